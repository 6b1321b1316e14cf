// End-to-end: `meridian up` once a user exists (added with `meridian user add`, as the
// README shows): every replica starts with the one token signing key `meridian up` keeps,
// so the user's credentials work in every region, and a token issued by one region is
// accepted by another.
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
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
const password = "alice-password-123";
const basic = `Basic ${Buffer.from(`alice:${password}`).toString("base64")}`;

describe("meridian up with a user", () => {
  let dir: string;
  let child: ChildProcess;
  let output = "";
  let ports: number[];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "meridian-up-auth-"));
    ports = await freePorts(regions.length);
    const topology = {
      replicas: regions.map((region, i) => ({
        region,
        ...(i === 0 ? { home: true } : {}),
        listen: `127.0.0.1:${ports[i]}`,
        data: `./data/${region}`,
      })),
      wan: { rttMs: 2 },
      log: { level: "warn" },
    };
    await writeFile(join(dir, "meridian.yaml"), toYaml(topology));
    await new Promise<void>((resolve, reject) => {
      const add = execFile(
        process.execPath,
        [bin, "user", "add", "alice", "--config", "meridian.yaml", "--grant", "team/**=pull,push"],
        { cwd: dir },
        (error) => (error ? reject(error) : resolve()),
      );
      add.stdin?.end(`${password}\n`);
    });
    child = spawn(process.execPath, [bin, "up", "--config", "meridian.yaml"], {
      cwd: dir,
      stdio: ["ignore", "pipe", "pipe"],
    });
    for (const stream of [child.stdout, child.stderr]) {
      stream?.on("data", (chunk: Buffer) => {
        output += chunk.toString();
      });
    }
    await waitFor(
      async () => output.includes("replicas running") || child.exitCode !== null,
      "meridian up to start",
      60_000,
    );
  });

  after(async () => {
    if (child.exitCode === null) {
      // SIGTERM: `meridian up` stops its replicas; SIGKILL would leave them running.
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 20_000);
      await once(child, "exit");
      clearTimeout(killer);
    }
    await rm(dir, { recursive: true, force: true });
  });

  it("serves the user in every region, with tokens good everywhere", async () => {
    assert.equal(child.exitCode, null, output);
    for (const [index, region] of regions.entries()) {
      const base = `http://127.0.0.1:${ports[index]}`;
      assert.equal((await fetch(`${base}/v2/`)).status, 401, `${region} without credentials`);
      const reply = await fetch(`${base}/v2/`, { headers: { Authorization: basic } });
      assert.equal(reply.status, 200, `${region} with alice's password`);
    }
    const issued = await fetch(
      `http://127.0.0.1:${ports[0]}/token?service=meridian&scope=repository:team/app:pull`,
      { headers: { Authorization: basic } },
    );
    assert.equal(issued.status, 200);
    const { token } = (await issued.json()) as { token: string };
    const elsewhere = await fetch(`http://127.0.0.1:${ports[1]}/v2/team/app/tags/list`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    assert.notEqual(elsewhere.status, 401, "eastus accepts westus's token");
  });
});
