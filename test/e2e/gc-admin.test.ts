// End to end, one replica: the garbage-collection admin API refuses bad input with OCI
// error bodies, the CLI says what is wrong in one line with a non-zero exit, and a
// periodic pass (gc.intervalSeconds) runs by itself and shows in /metrics.
// Owns: this file. Helpers: test/support/{meridian-process,registry-http,wait-for}.ts.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { type MeridianProcess, startMeridian } from "../support/meridian-process.ts";
import { randomBlob } from "../support/oci-fixtures.ts";
import { pushBlob } from "../support/registry-http.ts";
import { waitFor } from "../support/wait-for.ts";

const bin = fileURLToPath(new URL("../../bin/meridian.js", import.meta.url));

describe("garbage collection admin API and CLI", () => {
  let server: MeridianProcess;
  let home: string;

  before(async () => {
    home = await mkdtemp(join(tmpdir(), "meridian-gc-admin-"));
    const config = join(home, "meridian.yaml");
    await writeFile(config, "gc:\n  graceSeconds: 0\n  intervalSeconds: 1\n");
    server = await startMeridian({ args: ["--config", config] });
  });

  after(async () => {
    await server?.dispose();
    if (home) await rm(home, { recursive: true, force: true });
  });

  const meridian = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [bin, ...args],
        {
          cwd: home,
          env: { ...process.env, MERIDIAN_CONFIG_DIR: join(home, "config") },
          timeout: 30_000,
        },
        (error, stdout, stderr) =>
          resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
      );
    });

  const send = async (method: string, path: string, body?: string) => {
    const response = await fetch(`${server.url}/_meridian/admin/${path}`, { method, body });
    const text = await response.text();
    return { status: response.status, body: text === "" ? undefined : JSON.parse(text) };
  };

  it("refuses bad requests with OCI error bodies", async () => {
    for (const [method, path, body, status] of [
      ["POST", "gc", '{"graceSeconds": -1}', 400],
      ["POST", "gc", '{"graceSeconds": 1.5}', 400],
      ["POST", "gc", '{"dryRun": "yes"}', 400],
      ["POST", "gc", '{"unknown": 1}', 400],
      ["POST", "gc", "not json", 400],
      ["POST", "gc", '{"region": "nowhere"}', 400],
      ["GET", "gc", undefined, 405],
      ["POST", "gcx", "{}", 404],
      ["DELETE", "storage", undefined, 405],
      ["PUT", "retention", '{"repositories": "a/**"}', 400],
      ["PUT", "retention", '{"repositories": "a/**", "untaggedDays": -2}', 400],
      ["PUT", "retention", '{"repositories": "", "untaggedDays": 2}', 400],
      ["DELETE", "retention", undefined, 400],
      ["DELETE", "retention?repositories=none%2F**", undefined, 404],
    ] as const) {
      const answer = await send(method, path, body);
      assert.equal(answer.status, status, `${method} ${path} ${body ?? ""}`);
      const error = (answer.body as { errors?: { code?: string; message?: string }[] })
        ?.errors?.[0];
      assert.ok(error?.code && error.message, `${method} ${path}: an OCI error body`);
    }
  });

  it("the CLI says what is wrong in one line and exits non-zero", async () => {
    for (const args of [
      ["gc", "--grace-seconds", "soon", "--registry", server.url],
      ["gc", "-o", "yaml", "--registry", server.url],
      ["gc", "--region", "nowhere", "--registry", server.url],
      [
        "retention",
        "set",
        "--repository",
        "a/**",
        "--untagged-days",
        "-1",
        "--registry",
        server.url,
      ],
      ["retention", "set", "--untagged-days", "3", "--registry", server.url],
      ["retention", "disable", "--registry", server.url],
      ["gc", "--registry", "http://127.0.0.1:1"],
    ]) {
      const run = await meridian(args);
      assert.notEqual(run.code, 0, args.join(" "));
      assert.match(run.stderr, /^meridian: /, args.join(" "));
      assert.equal(run.stderr.trim().split("\n").length, 1, `${args.join(" ")}: ${run.stderr}`);
    }
  });

  it("runs a periodic pass by itself", async () => {
    const orphan = randomBlob(4_000);
    await pushBlob(server.url, "e2e/periodic", orphan);
    // No request: the periodic passes unlink the orphan and take its bytes.
    await waitFor(
      async () =>
        (await fetch(`${server.url}/v2/e2e/periodic/blobs/${orphan.digest}`, { method: "HEAD" }))
          .status === 404,
      "a periodic pass to expire the orphan",
      30_000,
      100,
    );
    await waitFor(
      async () => {
        const metrics = await (await fetch(`${server.url}/metrics`)).text();
        const line = metrics
          .split("\n")
          .find((l) => l.startsWith("meridian_gc_reclaimed_bytes_total"));
        return Number(line?.split(" ").pop() ?? 0) >= orphan.size;
      },
      "the reclaimed bytes in /metrics",
      30_000,
      100,
    );
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /meridian_gc_last_pass_timestamp_seconds\{region="local"\} [1-9]/);
    assert.match(metrics, /meridian_storage_bytes\{region="local"\} \d/);
  });

  // Last: once a user exists, everything needs credentials.
  it("needs the admin role once users exist", async () => {
    const basic = (name: string, password: string) =>
      `Basic ${Buffer.from(`${name}:${password}`).toString("base64")}`;
    const put = (name: string, body: object, authorization?: string) =>
      fetch(`${server.url}/_meridian/admin/users/${name}`, {
        method: "PUT",
        headers: authorization ? { Authorization: authorization } : {},
        body: JSON.stringify(body),
      });
    assert.equal((await put("root", { password: "root-password-1", admin: true })).status, 200);
    const root = basic("root", "root-password-1");
    const dev = {
      password: "dev-password-1",
      permissions: [{ repositories: "**", actions: ["pull", "push", "delete"] }],
    };
    assert.equal((await put("dev", dev, root)).status, 200);
    for (const [method, path] of [
      ["POST", "gc"],
      ["GET", "storage"],
      ["GET", "retention"],
    ] as const) {
      const call = (authorization?: string) =>
        fetch(`${server.url}/_meridian/admin/${path}`, {
          method,
          headers: authorization ? { Authorization: authorization } : {},
          body: method === "POST" ? "{}" : undefined,
        });
      assert.equal((await call()).status, 401, `${path} without credentials`);
      const denied = await call(basic("dev", "dev-password-1"));
      assert.equal(denied.status, 403, `${path} as a non-admin`);
      assert.equal(
        ((await denied.json()) as { errors: { code: string }[] }).errors[0]?.code,
        "DENIED",
      );
      assert.equal((await call(root)).status, 200, `${path} as an admin`);
    }
  });
});
