// End-to-end: `meridian login`, `meridian user` and `meridian token` against a running
// replica's admin API, as an operator uses them: the first admin is created while no user
// exists, later commands need a login (stored with mode 0600), changes take effect without
// a restart, and every failure is one line with a non-zero exit code.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { type MeridianProcess, startMeridian } from "../support/meridian-process.ts";

const bin = fileURLToPath(new URL("../../bin/meridian.js", import.meta.url));

describe("meridian login, user and token through the admin API", () => {
  let server: MeridianProcess;
  let home: string;

  /** Runs the CLI with `input` on stdin; its exit code and output. */
  const meridian = (args: string[], input = "", env: NodeJS.ProcessEnv = {}) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const child = execFile(
        process.execPath,
        [bin, ...args],
        {
          cwd: home,
          env: { ...process.env, MERIDIAN_CONFIG_DIR: join(home, "config"), ...env },
          timeout: 30_000,
        },
        (error, stdout, stderr) =>
          resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
      );
      child.stdin?.end(input);
    });

  const v2 = async (name: string, password: string) =>
    (
      await fetch(`${server.url}/v2/`, {
        headers: {
          Authorization: `Basic ${Buffer.from(`${name}:${password}`).toString("base64")}`,
        },
      })
    ).status;

  before(async () => {
    home = await mkdtemp(join(tmpdir(), "meridian-cli-users-"));
    server = await startMeridian({
      env: { MERIDIAN_TOKEN_SIGNING_KEY: "cli-users-signing-key-0123456789abcdef" },
    });
  });

  after(async () => {
    await server?.dispose();
    await rm(home, { recursive: true, force: true });
  });

  it("creates the first admin, then needs a login, and manages users and tokens", async () => {
    const first = await meridian(
      ["user", "add", "root", "--admin", "--registry", server.url],
      "root-password-1\n",
    );
    assert.equal(first.code, 0, first.stderr);
    assert.equal(await v2("root", "root-password-1"), 200);

    const anonymous = await meridian(
      ["user", "add", "alice", "--registry", server.url, "--grant", "team/**=pull"],
      "alice-password-1\n",
    );
    assert.equal(anonymous.code, 1);
    assert.match(anonymous.stderr, /^meridian: .*401 UNAUTHORIZED[^\n]*\n$/);

    const wrong = await meridian(["login", server.url, "-u", "root"], "not-the-password\n");
    assert.equal(wrong.code, 1);
    assert.equal(wrong.stderr.split("\n").length, 2, `one line: ${wrong.stderr}`);

    const login = await meridian(["login", server.url, "-u", "root"], "root-password-1\n");
    assert.equal(login.code, 0, login.stderr);
    const stored = await stat(join(home, "config", "config.json"));
    assert.equal(stored.mode & 0o777, 0o600);

    const added = await meridian(
      ["user", "add", "alice", "--grant", "team/**=pull,push"],
      "alice-password-1\n",
    );
    assert.equal(added.code, 0, added.stderr);
    assert.equal(await v2("alice", "alice-password-1"), 200, "at once, no restart");

    const listed = await meridian(["user", "list", "-o", "json"]);
    assert.deepEqual(
      (JSON.parse(listed.stdout) as { name: string }[]).map((u) => u.name),
      ["alice", "root"],
    );
    assert.match((await meridian(["user", "list"])).stdout, /^NAME +ROLE +PERMISSIONS\n/);
    assert.equal((await meridian(["user", "list", "-o", "yaml"])).code, 2);

    const token = await meridian(["token", "add", "ci", "--grant", "team/app=pull"]);
    assert.equal(token.code, 0, token.stderr);
    const secret = token.stdout.trim().split("\n").pop() ?? "";
    assert.equal(await v2("ci", secret), 200);
    assert.doesNotMatch(
      (await meridian(["token", "list", "-o", "json"])).stdout,
      new RegExp(secret),
    );

    assert.equal((await meridian(["user", "delete", "alice"])).code, 0);
    assert.equal(await v2("alice", "alice-password-1"), 401);
    const again = await meridian(["user", "delete", "alice"]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /404/);
  });

  it("says where to point it when there is no registry to talk to", async () => {
    const lost = await meridian(["user", "list"], "", { MERIDIAN_CONFIG_DIR: join(home, "none") });
    assert.equal(lost.code, 1);
    assert.match(lost.stderr, /^meridian: no registry to talk to: pass --registry/);
  });
});
