// End-to-end: `meridian webhook` against a running replica, as an operator uses it: create
// (the secret never printed again), list, show, update, ping, list-events, redeliver and
// delete; a refused URL or an unknown webhook is one line on stderr and a non-zero exit.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { type MeridianProcess, startMeridian } from "../support/meridian-process.ts";
import { waitFor } from "../support/wait-for.ts";
import { pushImage } from "../support/webhook-fixtures.ts";
import { startReceiver, type WebhookReceiver } from "../support/webhook-receiver.ts";

const bin = fileURLToPath(new URL("../../bin/meridian.js", import.meta.url));

describe("meridian webhook through the admin API", () => {
  let server: MeridianProcess;
  let home: string;
  let hook: WebhookReceiver;

  const meridian = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [bin, ...args, "--registry", server.url],
        {
          cwd: home,
          env: { ...process.env, MERIDIAN_CONFIG_DIR: join(home, "config") },
          timeout: 30_000,
        },
        (error, stdout, stderr) =>
          resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
      );
    });

  before(async () => {
    home = await mkdtemp(join(tmpdir(), "meridian-cli-webhooks-"));
    server = await startMeridian({ dataDir: join(home, "data") });
    hook = await startReceiver(() => 200);
  });

  after(async () => {
    await server?.stop();
    await hook?.close();
    await rm(home, { recursive: true, force: true });
  });

  it("creates, shows, updates, pings, lists events, redelivers and deletes", async () => {
    const made = await meridian([
      "webhook",
      "create",
      "--name",
      "deploy",
      "--uri",
      hook.url,
      "--actions",
      "push",
      "delete",
      "--scope",
      "app:*",
      "--headers",
      "X-A=1",
      "X-B=2",
      "--secret",
      "very-secret-1",
    ]);
    assert.equal(made.code, 0, made.stderr);
    assert.ok(!made.stdout.includes("very-secret-1"), made.stdout);
    assert.match(made.stdout, /secret\s+set \(never shown\)/);

    const listed = await meridian(["webhook", "list", "-o", "json"]);
    assert.equal(listed.code, 0, listed.stderr);
    const [view] = JSON.parse(listed.stdout) as Record<string, unknown>[];
    assert.deepEqual(view, {
      name: "deploy",
      uri: hook.url,
      actions: ["push", "delete"],
      location: null,
      scope: "app:*",
      headers: ["X-A", "X-B"],
      status: "enabled",
      secretSet: true,
    });

    const updated = await meridian([
      "webhook",
      "update",
      "--name",
      "deploy",
      "--actions",
      "push",
      "--scope",
      "",
    ]);
    assert.equal(updated.code, 0, updated.stderr);
    const shown = JSON.parse(
      (await meridian(["webhook", "show", "--name", "deploy", "-o", "json"])).stdout,
    );
    assert.deepEqual(shown.actions, ["push"]);
    assert.equal(shown.scope, null);
    assert.equal(shown.secretSet, true, "an update keeps the secret");

    const pinged = await meridian(["webhook", "ping", "--name", "deploy"]);
    assert.equal(pinged.code, 0, pinged.stderr);
    assert.match(pinged.stdout, /^ping \S+: 200 in \d+ ms/);

    await pushImage(server.url, "other/app", "v1");
    await waitFor(() => hook.received.some((e) => e.json.action === "push"), "the push event");
    const events = await meridian(["webhook", "list-events", "--name", "deploy"]);
    assert.equal(events.code, 0, events.stderr);
    assert.match(events.stdout, /^ID\s+REGION\s+ACTION\s+REPOSITORY\s+STATE/);
    assert.match(events.stdout, /push\s+other\/app\s+delivered\s+1\s+200/);
    const rows = JSON.parse(
      (await meridian(["webhook", "list-events", "--name", "deploy", "-o", "json"])).stdout,
    );
    const push = rows.find((r: { action: string }) => r.action === "push");
    const again = await meridian(["webhook", "redeliver", "--name", "deploy", push.id]);
    assert.equal(again.code, 0, again.stderr);
    await waitFor(() => hook.byKey(push.eventKey).length === 2, "the redelivered event");

    const removed = await meridian(["webhook", "delete", "--name", "deploy"]);
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal((await meridian(["webhook", "list", "-o", "json"])).stdout.trim(), "[]");
  });

  it("says why in one line when a URL is refused or a webhook is unknown", async () => {
    const refused = await meridian([
      "webhook",
      "create",
      "--name",
      "meta",
      "--uri",
      "http://169.254.169.254/",
      "--actions",
      "push",
    ]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /^meridian: .*link-local or cloud metadata address\n$/);
    const unknown = await meridian(["webhook", "show", "--name", "nope"]);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /^meridian: .*404/);
    assert.equal(unknown.stderr.split("\n").length, 2, unknown.stderr);
    const missing = await meridian(["webhook", "create", "--name", "x", "--actions", "push"]);
    assert.match(missing.stderr, /^meridian: create needs --uri\n$/);
  });
});
