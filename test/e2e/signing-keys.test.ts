// End-to-end: token signing keys as replicated control-plane records. Two replicas with
// no auth.signingKey configured: once the first user exists, the home replica makes a
// key and every replica takes it, so a token issued in one region works in the other.
// After `meridian signing-key rotate`, new tokens name the new key and tokens signed
// before keep working until they expire. A registry setting made in one region
// (`meridian settings set`) takes effect in the other without a restart.
// Owns: this file. Helpers: test/support/{cluster,wait-for}.ts.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { decodeProtectedHeader } from "jose";
import { type ReplicaProcess, startReplicaProcess } from "../../src/cluster/replica-process.ts";
import { freePorts } from "../support/cluster.ts";
import { waitFor } from "../support/wait-for.ts";

const bin = fileURLToPath(new URL("../../bin/meridian.js", import.meta.url));
const run = promisify(execFile);
const basic = `Basic ${Buffer.from("root:root-password-1").toString("base64")}`;

describe("token signing keys and settings shared through the replica set", () => {
  let dir = "";
  const replicas = new Map<string, ReplicaProcess>();
  const url = (region: string) => replicas.get(region)?.url ?? "";

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "meridian-keys-"));
    const [west, east] = await freePorts(2);
    const file = join(dir, "meridian.yaml");
    await writeFile(
      file,
      [
        "replication: { secret: keys-test-secret-0123456789, pollWaitMs: 2000 }",
        "replicas:",
        `  - { region: westus, home: true, listen: 127.0.0.1:${west}, data: ${join(dir, "westus")} }`,
        `  - { region: eastus, listen: 127.0.0.1:${east}, data: ${join(dir, "eastus")} }`,
        "",
      ].join("\n"),
    );
    const { MERIDIAN_TOKEN_SIGNING_KEY: _none, ...env } = process.env;
    for (const region of ["westus", "eastus"]) {
      replicas.set(
        region,
        await startReplicaProcess({ args: ["--config", file, "--region", region], env }),
      );
    }
  });
  after(async () => {
    for (const replica of replicas.values()) await replica.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const tokenFrom = async (region: string): Promise<string> => {
    const response = await fetch(
      `${url(region)}/token?service=meridian&scope=repository:team/app:pull`,
      { headers: { Authorization: basic } },
    );
    assert.equal(response.status, 200);
    return ((await response.json()) as { token: string }).token;
  };
  const acceptedBy = async (region: string, token: string) =>
    (await fetch(`${url(region)}/v2/`, { headers: { Authorization: `Bearer ${token}` } }))
      .status === 200;

  it("a token issued in one region works in the other without a configured key", async () => {
    const made = await fetch(`${url("eastus")}/_meridian/admin/users/root`, {
      method: "PUT",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ password: "root-password-1", admin: true }),
    });
    assert.equal(made.status, 200);
    await waitFor(
      async () => {
        const token = await tokenFrom("westus").catch(() => "");
        return token !== "" && (await acceptedBy("eastus", token));
      },
      "a westus token to be accepted in eastus",
      20_000,
      100,
    );
  });

  it("after a rotation new tokens name the new key and older tokens still work", async () => {
    const before = await tokenFrom("westus");
    const env = { ...process.env, MERIDIAN_USERNAME: "root", MERIDIAN_PASSWORD: "root-password-1" };
    const { stdout } = await run(
      process.execPath,
      [bin, "signing-key", "rotate", "--registry", url("eastus")],
      { env },
    );
    const kid = /signed with (\S+)/.exec(stdout)?.[1];
    assert.ok(kid, stdout);
    await waitFor(
      async () => decodeProtectedHeader(await tokenFrom("eastus")).kid === kid,
      "eastus to sign with the new key",
      20_000,
      100,
    );
    const after = await tokenFrom("eastus");
    assert.notEqual(decodeProtectedHeader(before).kid, kid);
    await waitFor(() => acceptedBy("westus", after), "westus to accept the new key", 20_000, 100);
    assert.ok(await acceptedBy("eastus", before), "a token signed before the rotation holds");
    assert.ok(await acceptedBy("westus", before));
    const listed = await run(
      process.execPath,
      [bin, "signing-key", "list", "--registry", url("westus")],
      { env },
    );
    assert.match(listed.stdout, new RegExp(`${kid} +\\S+ +current`));
    assert.equal(listed.stdout.trim().split("\n").length, 3, listed.stdout);
  });

  it("a setting made through one region applies in the other at once, and resets", async () => {
    const env = { ...process.env, MERIDIAN_USERNAME: "root", MERIDIAN_PASSWORD: "root-password-1" };
    const cli = (args: string[]) =>
      run(process.execPath, [bin, ...args], { env }).then(
        (done) => ({ code: 0, stdout: done.stdout, stderr: done.stderr }),
        (error: { code: number; stdout: string; stderr: string }) => error,
      );
    const anonymous = async () => (await fetch(`${url("westus")}/v2/team/app/tags/list`)).status;
    assert.equal(await anonymous(), 401);
    const set = await cli([
      "settings",
      "set",
      "auth.anonymousPull",
      "true",
      "--registry",
      url("eastus"),
    ]);
    assert.equal(set.code, 0, set.stderr);
    await waitFor(
      async () => (await anonymous()) === 404,
      "anonymous pulls in westus",
      20_000,
      100,
    );
    const listed = await cli(["settings", "list", "--registry", url("westus")]);
    assert.match(listed.stdout, /auth\.anonymousPull +true +registry/);
    const bad = await cli([
      "settings",
      "set",
      "auth.tokenTtlSeconds",
      "-5",
      "--registry",
      url("westus"),
    ]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^meridian: auth\.tokenTtlSeconds: .*\n$/);
    const unknown = await cli(["settings", "set", "nope", "1", "--registry", url("westus")]);
    assert.match(unknown.stderr, /^meridian: unknown setting 'nope': one of auth\.anonymousPull/);
    const reset = await cli([
      "settings",
      "reset",
      "auth.anonymousPull",
      "--registry",
      url("westus"),
    ]);
    assert.equal(reset.code, 0, reset.stderr);
    await waitFor(
      async () => (await anonymous()) === 401,
      "anonymous pulls refused again",
      20_000,
      100,
    );
  });
});
