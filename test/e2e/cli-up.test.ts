// End-to-end: `meridian up` as `npm start` runs it, through the `meridian` command users
// have: every replica of the topology answers on its port, the global endpoint (hosted in
// the home replica's process) answers on its own, and SIGTERM stops them all.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { stringify as toYaml } from "yaml";
import { freePorts } from "../support/cluster.ts";
import { waitFor } from "../support/wait-for.ts";

const bin = fileURLToPath(new URL("../../bin/meridian.js", import.meta.url));
const regions = ["westus", "eastus"];

describe("meridian up", () => {
  let dir: string;
  let child: ChildProcess;
  let output = "";
  let ports: number[];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "meridian-up-"));
    ports = await freePorts(regions.length + 1);
    const topology = {
      registry: { name: `127.0.0.1:${ports[0]}` },
      replicas: regions.map((region, i) => ({
        region,
        ...(i === 0 ? { home: true } : {}),
        listen: `127.0.0.1:${ports[i + 1]}`,
        data: `./data/${region}`,
      })),
      globalEndpoint: { listen: `127.0.0.1:${ports[0]}`, hostedBy: "westus", geoip: false },
      wan: { rttMs: 2 },
      log: { level: "warn" },
    };
    await writeFile(join(dir, "meridian.yaml"), toYaml(topology));
    child = spawn(process.execPath, [bin, "up", "--config", "meridian.yaml"], {
      cwd: dir,
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    await waitFor(async () => output.includes("global endpoint"), "meridian up to start", 60_000);
  });

  after(async () => {
    if (child.exitCode === null) {
      child.kill("SIGKILL");
      await once(child, "exit");
    }
    await rm(dir, { recursive: true, force: true });
  });

  it("serves every replica and the global endpoint, then stops on SIGTERM", async () => {
    assert.match(output, /2 replicas running/);
    assert.match(output, /in westus's process/);
    assert.match(output, /portal +http:\/\/127\.0\.0\.1:\d+\/portal\//);
    for (const [index, region] of regions.entries()) {
      const reply = await fetch(`http://127.0.0.1:${ports[index + 1]}/v2/`);
      assert.equal(reply.status, 200, region);
    }
    const global = await fetch(`http://127.0.0.1:${ports[0]}/v2/`);
    assert.equal(global.status, 200);
    assert.equal(global.headers.get("x-meridian-replica"), "westus");
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    const [code] = await exited;
    assert.equal(code, 0, output);
    // A human console: the table, no replica's JSON log line, a quiet end with a closing line.
    assert.match(output, /REGION +ENDPOINT +STATUS +ROLE/);
    assert.match(output, /westus +http:\/\/127\.0\.0\.1:\d+ +(Creating|Syncing|Ready) +home/);
    assert.doesNotMatch(output, /^\{"level"/m);
    assert.doesNotMatch(output, /ECONNRESET|reset/i);
    assert.match(output, /Meridian 127\.0\.0\.1:\d+ stopped\.\n$/);
    await assert.rejects(fetch(`http://127.0.0.1:${ports[1]}/v2/`));
  });
});
