// End-to-end: the join flow for a replica on another machine. A home replica run by
// `meridian serve` (no supervisor) records a new replica with a one-time join token; a
// process started with `serve --join <home> --join-token T` joins, bootstraps from the
// home replica, becomes Ready holding the images, replicates both ways, restarts without
// the token, and the token does not work twice.
// Owns: this file. Helpers: test/support/{cluster,replication-http,wait-for}.ts.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { type ReplicaProcess, startReplicaProcess } from "../../src/cluster/replica-process.ts";
import { freePorts } from "../support/cluster.ts";
import { getManifest, makeImage, pushImage } from "../support/replication-http.ts";
import { waitFor } from "../support/wait-for.ts";

const bin = fileURLToPath(new URL("../../bin/meridian.js", import.meta.url));
const run = promisify(execFile);
const secret = "join-test-secret-0123456789";

interface Replication {
  name: string;
  status: string;
  provisioningState: string;
  statusMessage?: string;
}

describe("joining a replica on another machine", () => {
  let dir = "";
  let home: ReplicaProcess;
  let joined: ReplicaProcess | undefined;
  let joinPort = 0;
  let token = "";

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "meridian-join-"));
    const [homePort, port] = await freePorts(2);
    joinPort = port ?? 0;
    const file = join(dir, "meridian.yaml");
    await writeFile(
      file,
      [
        `replication: { secret: ${secret}, antiEntropySeconds: 2, pollWaitMs: 2000 }`,
        "replicas:",
        `  - { region: westus, home: true, listen: 127.0.0.1:${homePort}, data: ${join(dir, "westus")} }`,
        "",
      ].join("\n"),
    );
    home = await startReplicaProcess({ args: ["--config", file, "--region", "westus"] });
  });
  after(async () => {
    await joined?.stop();
    await home?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const admin = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${home.url}/_meridian/admin/${path}`, {
      method,
      headers: { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, json: (await response.json()) as Record<string, unknown> };
  };
  const joinArgs = (data: string, withToken: string | undefined) => [
    "--join",
    home.url,
    ...(withToken ? ["--join-token", withToken] : []),
    "--region",
    "eastus",
    "--listen",
    `127.0.0.1:${joinPort}`,
    "--data",
    data,
  ];

  it("records the replica with a one-time token and the command to run", async () => {
    await pushImage(home.url, "team/app", "v1", makeImage([200_000], "before-join"));
    const created = await admin("POST", "replications", { location: "eastus" });
    assert.equal(created.status, 201, JSON.stringify(created.json));
    assert.equal(typeof created.json.joinToken, "string");
    token = String(created.json.joinToken);
    assert.match(
      String(created.json.joinCommand),
      /^meridian serve --join http:\/\/127\.0\.0\.1:\d+ --join-token \S+ --region eastus/,
    );
    const listed = (await admin("GET", "replications/eastus")).json as unknown as Replication;
    assert.equal(listed.status, "Creating");
    assert.match(listed.statusMessage ?? "", /waiting for the replica to join/);
  });

  it("the joined replica becomes Ready with the images and replicates both ways", async () => {
    joined = await startReplicaProcess({ args: joinArgs(join(dir, "eastus"), token) });
    await waitFor(
      async () => {
        const view = (await admin("GET", "replications/eastus")).json as unknown as Replication;
        return view.status === "Ready" && view.provisioningState === "Succeeded";
      },
      "eastus to join and become Ready",
      60_000,
      200,
    );
    assert.equal((await getManifest(joined.url, "team/app", "v1")).status, 200);
    await pushImage(joined.url, "team/from-east", "v1", makeImage([30_000], "east"));
    await waitFor(
      async () => (await getManifest(home.url, "team/from-east", "v1")).status === 200,
      "the home replica to follow the joined one",
      30_000,
      100,
    );
  });

  it("restarts without the token, and the token does not work twice", async () => {
    await joined?.stop();
    joined = await startReplicaProcess({ args: joinArgs(join(dir, "eastus"), undefined) });
    assert.equal((await getManifest(joined.url, "team/from-east", "v1")).status, 200);
    const again = await run(process.execPath, [
      bin,
      "serve",
      ...joinArgs(join(dir, "eastus-again"), token).map((arg) =>
        arg === `127.0.0.1:${joinPort}` ? "127.0.0.1:0" : arg,
      ),
    ]).then(
      () => ({ code: 0, stderr: "" }),
      (error: { code: number; stderr: string }) => error,
    );
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^meridian: cannot join: .* answered 403: no valid join token/);
    assert.equal(again.stderr.trim().split("\n").length, 1, again.stderr);
  });
});
