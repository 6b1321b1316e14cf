// Webhook delivery from one replica's persisted outbox, against receivers started by the
// test on 127.0.0.1: a receiver failing twice then succeeding gets exactly three requests
// (two retries, one success, signed with the secret); an event still pending when the
// replica is killed with kill -9 is delivered after the restart; a receiver that never
// answers holds back no push and its events end dead-lettered with every attempt logged;
// receiver URLs on link-local and metadata addresses are always refused, private ones
// when webhooks.denyPrivateNetworks is set; the API takes the admin role once users exist.
// Owns: this file. Helpers: test/support/{meridian-process,webhook-receiver,webhook-fixtures}.ts.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { sumSamples } from "../support/cluster.ts";
import { type MeridianProcess, startMeridian } from "../support/meridian-process.ts";
import { waitFor } from "../support/wait-for.ts";
import { pushImage, webhookApi, webhookConfig } from "../support/webhook-fixtures.ts";
import { startReceiver, type WebhookReceiver } from "../support/webhook-receiver.ts";

interface EventRow {
  id: string;
  eventKey: string;
  state: string;
  attempts: number;
  log: { status: number | null; latencyMs: number; response: string }[];
}

describe("webhook delivery from the outbox", () => {
  let dir: string;
  let replica: MeridianProcess;
  const receivers: WebhookReceiver[] = [];

  const receiver = async (...args: Parameters<typeof startReceiver>) => {
    const started = await startReceiver(...args);
    receivers.push(started);
    return started;
  };
  const events = async (base: string, name: string): Promise<EventRow[]> => {
    const answer = await webhookApi(base, "GET", `/${name}/events?limit=500`);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    return answer.body as EventRow[];
  };
  const create = async (base: string, body: Record<string, unknown>) => {
    const answer = await webhookApi(base, "POST", "", body);
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    return answer.body as Record<string, unknown>;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "meridian-webhooks-"));
    // Short backoff and timeout through the configuration: the test waits for states.
    const config = await webhookConfig(dir, {
      maxAttempts: 3,
      initialBackoffMs: 20,
      maxBackoffMs: 40,
      timeoutMs: 400,
    });
    replica = await startMeridian({ args: ["--config", config], dataDir: join(dir, "data") });
  });

  after(async () => {
    await replica?.stop();
    for (const r of receivers) await r.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("a receiver failing twice then succeeding: two retries, one success, nothing more", async () => {
    let calls = 0;
    const hook = await receiver(() => {
      calls += 1;
      return calls <= 2 ? 500 : 200;
    });
    const made = await create(replica.url, {
      name: "flaky",
      uri: hook.url,
      actions: ["push"],
      scope: "flaky/*:*",
      secret: "s3cret-value",
      headers: { "X-Team": "platform" },
    });
    assert.equal(made.secretSet, true);
    assert.equal(made.secret, undefined, "the secret is never shown");
    const image = await pushImage(replica.url, "flaky/app", "v1");

    await waitFor(
      async () => (await events(replica.url, "flaky")).some((e) => e.state === "delivered"),
      "the flaky webhook's event to be delivered",
    );
    const [row] = await events(replica.url, "flaky");
    assert.ok(row);
    assert.equal(row.attempts, 3);
    assert.deepEqual(
      row.log.map((a) => a.status),
      [500, 500, 200],
    );
    assert.ok(row.log.every((a) => typeof a.latencyMs === "number" && a.response.length > 0));

    // A second event goes through after it: if the first were sent again, it would be by now.
    await pushImage(replica.url, "flaky/app", "v2");
    await waitFor(
      async () =>
        (await events(replica.url, "flaky")).filter((e) => e.state === "delivered").length === 2,
      "the second event to be delivered",
    );
    assert.equal(hook.byKey(row.eventKey).length, 3, "two retries and one success, nothing more");
    const first = hook.byKey(row.eventKey)[2];
    assert.ok(first);
    const expected = `sha256=${createHmac("sha256", "s3cret-value").update(first.body).digest("hex")}`;
    assert.equal(first.headers["x-meridian-signature"], expected);
    assert.equal(first.headers["x-team"], "platform");
    assert.equal(first.json.action, "push");
    const target = first.json.target as Record<string, unknown>;
    assert.equal(target.digest, image.digest);
    assert.equal(target.tag, "v1");
    assert.equal(target.size, image.size);
    // Every retry carries the same body, so the same signature and event key.
    assert.equal(new Set(hook.byKey(row.eventKey).map((e) => e.body)).size, 1);

    const shown = await webhookApi(replica.url, "GET", "/flaky");
    assert.equal(shown.body.secret, undefined);
    assert.deepEqual(shown.body.headers, ["X-Team"]);
    const metrics = await (await fetch(`${replica.url}/metrics`)).text();
    assert.equal(sumSamples(metrics, "meridian_webhook_retries_total", { webhook: "flaky" }), 2);
    assert.equal(sumSamples(metrics, "meridian_webhook_failures_total", { webhook: "flaky" }), 2);
    assert.equal(sumSamples(metrics, "meridian_webhook_deliveries_total", { webhook: "flaky" }), 2);
    assert.equal(sumSamples(metrics, "meridian_webhook_queue_depth", { webhook: "flaky" }), 0);
  });

  it("a receiver that never answers: pushes succeed, events end dead-lettered", async () => {
    const hook = await receiver(() => "hang");
    await create(replica.url, {
      name: "silent",
      uri: hook.url,
      actions: ["push", "delete"],
      scope: "silent:*",
    });
    const pushes = 6;
    for (let i = 0; i < pushes; i += 1) await pushImage(replica.url, "silent", `t${i}`);
    const deleted = await fetch(`${replica.url}/v2/silent/manifests/t0`, { method: "DELETE" });
    assert.equal(deleted.status, 202);
    await waitFor(
      async () => {
        const rows = await events(replica.url, "silent");
        return rows.length === pushes + 1 && rows.every((e) => e.state === "dead");
      },
      "every event of the silent webhook to be dead-lettered",
      30_000,
      100,
    );
    for (const row of await events(replica.url, "silent")) {
      assert.equal(row.attempts, 3);
      assert.ok(row.log.every((a) => a.status === null && a.response.includes("no answer")));
    }
    const metrics = await (await fetch(`${replica.url}/metrics`)).text();
    assert.equal(
      sumSamples(metrics, "meridian_webhook_dead_lettered_total", { webhook: "silent" }),
      7,
    );
    assert.equal(sumSamples(metrics, "meridian_webhook_queue_depth", { webhook: "silent" }), 0);

    // redeliver puts a dead event back in the queue; it is tried again.
    const [last] = await events(replica.url, "silent");
    assert.ok(last);
    hook.setHandler(() => 204);
    const again = await webhookApi(replica.url, "POST", `/silent/events/${last.id}/redeliver`);
    assert.equal(again.status, 202);
    await waitFor(
      async () =>
        (await events(replica.url, "silent")).find((e) => e.id === last.id)?.state === "delivered",
      "the redelivered event to be delivered",
    );
    const unknown = await webhookApi(replica.url, "POST", "/silent/events/nope/redeliver");
    assert.equal(unknown.status, 404);
  });

  it("ping sends an ACR-shaped ping and logs it", async () => {
    const hook = await receiver(() => 200);
    await create(replica.url, { name: "pinged", uri: hook.url, actions: ["push"] });
    const answer = await webhookApi(replica.url, "POST", "/pinged/ping");
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.status, 200);
    assert.equal(hook.received[0]?.json.action, "ping");
    const rows = await events(replica.url, "pinged");
    assert.equal(rows[0]?.id, answer.body.id);
  });

  it("an event pending when the replica is killed with kill -9 is delivered after the restart", async () => {
    const data = join(dir, "crash");
    const config = await webhookConfig(join(dir), {
      maxAttempts: 100,
      initialBackoffMs: 50,
      maxBackoffMs: 100,
      timeoutMs: 1000,
    });
    let crashing: MeridianProcess | undefined = await startMeridian({
      args: ["--config", config],
      dataDir: data,
    });
    try {
      const hook = await receiver(() => 503);
      await create(crashing.url, { name: "durable", uri: hook.url, actions: ["push"] });
      await pushImage(crashing.url, "durable/app", "v1");
      await waitFor(() => hook.received.length >= 1, "a first failed attempt");
      const key = hook.received[0]?.json.eventKey as string;
      await crashing.kill9();
      hook.setHandler(() => 200);
      crashing = await startMeridian({ args: ["--config", config], dataDir: data });
      await waitFor(
        () => hook.byKey(key).some((e) => e.status === 200),
        "the pending event to be delivered after the restart",
      );
      const rows = await events(crashing.url, "durable");
      assert.equal(rows.length, 1);
      assert.equal(rows[0]?.state, "delivered");
      assert.equal(rows[0]?.eventKey, key);
    } finally {
      await crashing?.stop();
    }
  });
});

describe("webhook receiver URLs", () => {
  let dir: string;
  let open: MeridianProcess;
  let strict: MeridianProcess;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "meridian-webhook-urls-"));
    open = await startMeridian({ dataDir: join(dir, "open") });
    const config = await webhookConfig(dir, { denyPrivateNetworks: true });
    strict = await startMeridian({ args: ["--config", config], dataDir: join(dir, "strict") });
  });

  after(async () => {
    await open?.stop();
    await strict?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const refused = async (base: string, uri: string, why: RegExp) => {
    const answer = await webhookApi(base, "POST", "", { name: "x", uri, actions: ["push"] });
    assert.equal(answer.status, 400, `${uri}: ${JSON.stringify(answer.body)}`);
    assert.equal(answer.body.errors[0].code, "UNSUPPORTED");
    assert.match(answer.body.errors[0].detail.reason, why);
  };

  it("link-local and cloud metadata addresses are always refused", async () => {
    for (const base of [open.url, strict.url]) {
      await refused(
        base,
        "http://169.254.169.254/latest/meta-data/",
        /link-local or cloud metadata/,
      );
      await refused(base, "http://[fe80::1]/hook", /link-local/);
      await refused(base, "http://[fd00:ec2::254]/hook", /metadata/);
      await refused(base, "http://[::ffff:169.254.169.254]/hook", /link-local/);
      await refused(base, "ftp://127.0.0.1/hook", /http or https only/);
    }
  });

  it("loopback and private receivers are refused only with denyPrivateNetworks", async () => {
    await refused(strict.url, "http://127.0.0.1:9/hook", /private/);
    await refused(strict.url, "http://10.1.2.3/hook", /private/);
    await refused(strict.url, "http://localhost:9/hook", /private/);
    const allowed = await webhookApi(open.url, "POST", "", {
      name: "local",
      uri: "http://127.0.0.1:9/hook",
      actions: ["push"],
    });
    assert.equal(allowed.status, 201, JSON.stringify(allowed.body));
    const listed = await webhookApi(strict.url, "GET", "");
    assert.deepEqual(listed.body, []);
  });

  it("the webhook API takes the admin role once users exist", async () => {
    // Runs last: it turns authentication on for this replica.
    const made = await fetch(`${strict.url}/_meridian/admin/users/root`, {
      method: "PUT",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ password: "root-password-1", admin: true }),
    });
    assert.equal(made.status, 200, await made.text());
    await waitFor(async () => (await webhookApi(strict.url, "GET", "")).status === 401, "auth on");
    const basic = (name: string, password: string) =>
      `Basic ${Buffer.from(`${name}:${password}`).toString("base64")}`;
    const asRoot = await fetch(`${strict.url}/_meridian/admin/webhooks`, {
      headers: { Authorization: basic("root", "root-password-1") },
    });
    assert.equal(asRoot.status, 200, await asRoot.text());
    const bad = await fetch(`${strict.url}/_meridian/admin/webhooks`, {
      method: "POST",
      headers: { Authorization: basic("root", "wrong-password") },
      body: "{}",
    });
    assert.equal(bad.status, 401);
  });
});
