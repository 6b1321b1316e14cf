// End-to-end: a replica started as the child of another process (as `meridian up` starts
// its replicas) stops when that process is killed with SIGKILL, instead of running on
// unowned with its port and data folder; the same for a replica running as workers.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { waitFor } from "../support/wait-for.ts";

const replicaProcess = fileURLToPath(
  new URL("../../src/cluster/replica-process.ts", import.meta.url),
);

/** Starts a parent process that starts a replica, and returns both pids. */
async function parentWithReplica(args: string[]) {
  const script = `
    const { startReplicaProcess } = await import(${JSON.stringify(replicaProcess)});
    const replica = await startReplicaProcess({ args: ${JSON.stringify(args)} });
    console.log(JSON.stringify({ pid: replica.child.pid, url: replica.url }));
    setInterval(() => {}, 1000);
  `;
  const parent = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines = createInterface({ input: parent.stdout });
  const [line] = (await once(lines, "line")) as [string];
  const { pid, url } = JSON.parse(line) as { pid: number; url: string };
  return { parent, pid, url };
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe("a replica whose parent dies", () => {
  for (const [name, extra] of [
    ["one process", []],
    ["two workers", ["--workers", "2"]],
  ] as const) {
    it(`stops by itself (${name})`, { timeout: 60_000 }, async () => {
      const data = await mkdtemp(join(tmpdir(), "meridian-parent-"));
      const { parent, pid, url } = await parentWithReplica([
        "--listen",
        "127.0.0.1:0",
        "--data",
        data,
        ...extra,
      ]);
      assert.equal((await fetch(`${url}/v2/`)).status, 200);
      parent.kill("SIGKILL");
      await once(parent, "exit");
      await waitFor(() => !alive(pid), "the replica to stop", 20_000, 50);
      await waitFor(
        async () =>
          fetch(`${url}/v2/`).then(
            () => false,
            () => true,
          ),
        "its port to close",
        20_000,
        50,
      );
      await rm(data, { recursive: true, force: true });
    });
  }
});
