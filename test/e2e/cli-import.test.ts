// End-to-end: `meridian import` as an operator runs it: the command asks a replica to
// copy an image from a source registry with token authentication (password on stdin),
// follows the job with plain progress lines (no terminal here), and ends with one summary
// line and exit 0, or one `meridian:` line and exit 1.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import { hashSecret } from "../../src/auth/password-hash.ts";
import { pushTwoPlatformImage, twoPlatformImage } from "../support/import-source.ts";
import { type MeridianProcess, startMeridian } from "../support/meridian-process.ts";

const bin = fileURLToPath(new URL("../../bin/meridian.js", import.meta.url));
const password = "cli-import-password-3";

describe("meridian import (CLI)", () => {
  let dir: string;
  let source: MeridianProcess;
  let target: MeridianProcess;
  const first = twoPlatformImage();
  const second = twoPlatformImage();

  const meridian = (args: string[], input = "") =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const child = execFile(
        process.execPath,
        [bin, ...args],
        {
          cwd: dir,
          env: { ...process.env, MERIDIAN_CONFIG_DIR: join(dir, "config") },
          timeout: 60_000,
        },
        (error, stdout, stderr) =>
          resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
      );
      child.stdin?.end(input);
    });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "meridian-cli-import-"));
    const config = join(dir, "source.yaml");
    await writeFile(
      config,
      stringify({
        auth: {
          signingKey: "cli-import-signing-key-0123456789abcdef",
          users: [{ name: "ops", passwordHash: await hashSecret(password), admin: true }],
        },
      }),
    );
    source = await startMeridian({ args: ["--config", config] });
    target = await startMeridian();
    const authorization = `Basic ${Buffer.from(`ops:${password}`).toString("base64")}`;
    await pushTwoPlatformImage(source.url, "team/app", "v1", first, { authorization });
    await pushTwoPlatformImage(source.url, "team/app", "v2", second, { authorization });
  });

  after(async () => {
    await source?.dispose();
    await target?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  const importArgs = (tag: string, ...extra: string[]) => [
    "import",
    "--source",
    `${source.host}/team/app:${tag}`,
    "--image",
    "copy/app:stable",
    "--username",
    "ops",
    "--password-stdin",
    "--registry",
    target.url,
    ...extra,
  ];

  it("imports with the password from stdin, shows progress lines and a summary", async () => {
    const run = await meridian(importArgs("v1", "--with-referrers"), `${password}\n`);
    assert.equal(run.code, 0, run.stderr);
    assert.match(
      run.stdout,
      new RegExp(
        `^imported ${source.host}/team/app:v1 as copy/app:stable \\(${first.index.digest}\\): 7 blobs, .* copied, 0 already present\\n$`,
      ),
    );
    assert.match(run.stderr, /^import [0-9a-f-]{36}: (queued|running)/m);
    assert.match(run.stderr, /: succeeded, blobs 7\/7/);
    assert.doesNotMatch(run.stderr + run.stdout, new RegExp(password));
    const tagged = await fetch(`${target.url}/v2/copy/app/manifests/stable`, { method: "HEAD" });
    assert.equal(tagged.headers.get("docker-content-digest"), first.index.digest);
  });

  it("fails with one line and exit 1 when the tag names another image, and overwrites with --force", async () => {
    const refused = await meridian(importArgs("v2"), `${password}\n`);
    assert.equal(refused.code, 1);
    const lines = refused.stderr.trimEnd().split("\n");
    assert.match(
      lines.at(-1) ?? "",
      /^meridian: import failed: copy\/app:stable already exists .*use --force/,
    );
    assert.equal(refused.stdout, "");

    const forced = await meridian(importArgs("v2", "--force"), `${password}\n`);
    assert.equal(forced.code, 0, forced.stderr);
    const tagged = await fetch(`${target.url}/v2/copy/app/manifests/stable`, { method: "HEAD" });
    assert.equal(tagged.headers.get("docker-content-digest"), second.index.digest);
  });

  it("returns at once with --no-wait, lists the jobs, and follows one by id", async () => {
    const submitted = await meridian(importArgs("v1", "--no-wait", "--force"), `${password}\n`);
    assert.equal(submitted.code, 0, submitted.stderr);
    const id = submitted.stdout.trim();
    assert.match(id, /^[0-9a-f-]{36}$/);
    const followed = await meridian(["imports", id, "--registry", target.url]);
    assert.equal(followed.code, 0, followed.stderr);
    assert.match(followed.stdout, /^imported .* as copy\/app:stable \(sha256:/);
    const table = await meridian(["imports", "--registry", target.url]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^ID +STATE +IMAGE +SOURCE +BLOBS +BYTES\n/);
    assert.match(table.stdout, new RegExp(`^${id} +succeeded +copy/app:stable`, "m"));
    const json = JSON.parse(
      (await meridian(["imports", "-o", "json", "--registry", target.url])).stdout,
    ) as { id: string }[];
    assert.ok(json.some((job) => job.id === id));
    const unknown = await meridian([
      "imports",
      "00000000-0000-0000-0000-000000000000",
      "--registry",
      target.url,
    ]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^meridian: .*404/);
  });

  it("says in one line what is wrong with the flags", async () => {
    const noUser = await meridian([
      "import",
      "--source",
      `${source.host}/team/app:v1`,
      "--password-stdin",
      "--registry",
      target.url,
    ]);
    assert.equal(noUser.code, 1);
    assert.equal(noUser.stderr, "meridian: --password-stdin needs --username\n");
    const badSource = await meridian([
      "import",
      "--source",
      "nothing-here",
      "--registry",
      target.url,
    ]);
    assert.equal(badSource.code, 1);
    assert.match(badSource.stderr, /^meridian: source: name a tag/);
    assert.equal(badSource.stderr.split("\n").length, 2);
  });
});
