// End-to-end: `meridian replication list` against a topology whose replicas are not
// running names the refused connection and exits non-zero, as a script checking for
// Failed replicas needs.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { freePorts } from "../support/cluster.ts";

const bin = fileURLToPath(new URL("../../bin/meridian.js", import.meta.url));
const run = promisify(execFile);

/** A topology file naming one replica on a free port where nothing listens. */
async function topologyOfOneDownReplica() {
  const dir = await mkdtemp(join(tmpdir(), "meridian-cli-replication-"));
  const [port] = await freePorts(1);
  const file = join(dir, "meridian.yaml");
  await writeFile(
    file,
    `replicas:\n  - { region: westus, home: true, listen: 127.0.0.1:${port}, data: ${dir}/westus }\n`,
  );
  return { dir, file, port };
}

it("replication list names a refused connection and exits 1 when a replica is Failed", async () => {
  const { dir, file, port } = await topologyOfOneDownReplica();
  try {
    const outcome = await run(process.execPath, [
      bin,
      "replication",
      "list",
      "--config",
      file,
    ]).then(
      () => ({ code: 0, stdout: "" }),
      (error: { code: number; stdout: string }) => error,
    );
    assert.equal(outcome.code, 1);
    assert.match(
      outcome.stdout,
      new RegExp(`Failed +connection refused to 127\\.0\\.0\\.1:${port}`),
    );
    assert.doesNotMatch(outcome.stdout, /fetch failed/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

it("replication update of a replica that is down says so in one line", async () => {
  const { dir, file, port } = await topologyOfOneDownReplica();
  try {
    const args = [bin, "replication", "update", "westus", "--config", file];
    const outcome = await run(process.execPath, [
      ...args,
      "--global-endpoint-routing",
      "false",
    ]).then(
      () => ({ code: 0, stderr: "" }),
      (error: { code: number; stderr: string }) => error,
    );
    assert.equal(outcome.code, 1);
    assert.equal(outcome.stderr, `meridian: westus: connection refused to 127.0.0.1:${port}\n`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
