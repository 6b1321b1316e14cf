// Distribution writes blobs without fsync, so its writes may still be waiting for
// writeback when the next scenario (or the next registry) starts, and whoever fsyncs then
// would pay for them. Each scenario therefore starts with the page cache written back;
// the run logs how long that took (15-80 ms in the runs so far: little was pending, so
// this guards the comparison rather than explaining the push figures' spread).
import { spawnSync } from "node:child_process";
import { performance } from "node:perf_hooks";

/** Writes every dirty page back (sync(1)); returns how long that took, in ms. */
export function flushWriteback(): number {
  const started = performance.now();
  spawnSync("sync", [], { stdio: "ignore" });
  return performance.now() - started;
}
