// End-to-end: `meridian up` whose standalone global endpoint cannot take its port says so
// in one line, exits 1, and leaves none of the replicas it had started running.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { fileURLToPath } from "node:url";
import { stringify as toYaml } from "yaml";
import { freePorts } from "../support/cluster.ts";

const bin = fileURLToPath(new URL("../../bin/meridian.js", import.meta.url));

it("meridian up with the global endpoint's port in use stops its replicas and says why", async () => {
  const dir = await mkdtemp(join(tmpdir(), "meridian-up-busy-"));
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
  const { port: busyPort } = busy.address() as AddressInfo;
  try {
    const [replicaPort] = await freePorts(1);
    const topology = {
      replicas: [
        { region: "westus", home: true, listen: `127.0.0.1:${replicaPort}`, data: "./data/westus" },
      ],
      globalEndpoint: { listen: `127.0.0.1:${busyPort}`, geoip: false },
      log: { level: "warn" },
    };
    await writeFile(join(dir, "meridian.yaml"), toYaml(topology));
    const outcome = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [bin, "up", "--config", "meridian.yaml", "--quiet"],
        { cwd: dir, timeout: 60_000 },
        (error, _stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stderr }),
      );
    });
    assert.equal(outcome.code, 1, outcome.stderr);
    assert.equal(
      outcome.stderr,
      `meridian: global endpoint: cannot listen on 127.0.0.1:${busyPort}: address already in use\n`,
    );
    await assert.rejects(fetch(`http://127.0.0.1:${replicaPort}/v2/`), "the replica was stopped");
  } finally {
    busy.close();
    await rm(dir, { recursive: true, force: true });
  }
});
