// Distribution writes blobs without fsync, so gigabytes of its data may still be waiting
// for writeback when the next scenario (or the next registry) starts, and whoever fsyncs
// then pays for it: in one run Meridian's durable pushes fell to half their speed right
// after Distribution's 4 GiB concurrent-upload scenario. Each scenario therefore starts
// with the page cache written back.
import { spawnSync } from "node:child_process";
import { performance } from "node:perf_hooks";

/** Writes every dirty page back (sync(1)); returns how long that took, in ms. */
export function flushWriteback(): number {
  const started = performance.now();
  spawnSync("sync", [], { stdio: "ignore" });
  return performance.now() - started;
}
