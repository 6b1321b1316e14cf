// The delivery worker on a real outbox file with a scripted sender: the backoff grows and
// is jittered within bounds; a thousand waiting events never put more than the concurrency
// limit in memory; one repository's events go out in order, a failure holding back only
// its own repository; the last failure dead-letters; a stop leaves attempts in flight
// uncounted.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { waitFor } from "../../test/support/wait-for.ts";
import { backoffMs, DeliveryWorker, type RetryPolicy } from "./delivery-worker.ts";
import type { Attempt, OutboxEvent } from "./outbox-store.ts";
import { SqliteOutboxStore } from "./sqlite-outbox-store.ts";
import type { Webhook } from "./webhook-record.ts";

const policy: RetryPolicy = { maxAttempts: 3, initialBackoffMs: 1, maxBackoffMs: 4 };
const hook: Webhook = {
  name: "h",
  uri: "http://127.0.0.1:9/",
  actions: ["push"],
  headers: {},
  status: "enabled",
};

async function withOutbox(body: (outbox: SqliteOutboxStore) => Promise<void>) {
  const dir = await mkdtemp(join(tmpdir(), "meridian-outbox-"));
  const outbox = new SqliteOutboxStore(join(dir, "webhooks.db"), { durable: false });
  try {
    await body(outbox);
  } finally {
    await outbox.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function fill(outbox: SqliteOutboxStore, count: number, repositories: number) {
  const events = Array.from({ length: count }, (_, i) => ({
    id: `e${i}`,
    webhook: "h",
    eventKey: `k${i}`,
    repository: `repo${i % repositories}`,
    action: "push",
    payload: "{}",
    createdAt: 0,
  }));
  await outbox.enqueue(events, { seq: count, log: "log" });
}

const answer = (status: number | null): Attempt => ({ at: 0, status, latencyMs: 0, excerpt: "" });

describe("delivery worker", () => {
  it("backs off exponentially with jitter, capped", () => {
    const p = { maxAttempts: 10, initialBackoffMs: 100, maxBackoffMs: 1000 };
    assert.equal(
      backoffMs(1, p, () => 0),
      50,
    );
    assert.equal(
      backoffMs(1, p, () => 0.999999),
      100,
    );
    assert.equal(
      backoffMs(3, p, () => 0),
      200,
    );
    assert.equal(
      backoffMs(3, p, () => 0.999999),
      400,
    );
    assert.equal(
      backoffMs(9, p, () => 0.999999),
      1000,
    );
  });

  it("holds at most `concurrency` of 1000 waiting events in memory", async () => {
    await withOutbox(async (outbox) => {
      await fill(outbox, 1000, 100);
      let largestWindow = 0;
      const due = outbox.due.bind(outbox);
      outbox.due = async (now, limit) => {
        const rows = await due(now, limit);
        largestWindow = Math.max(largestWindow, rows.length);
        return rows;
      };
      const worker = new DeliveryWorker({
        outbox,
        webhook: async () => hook,
        send: async () => answer(null),
        retry: policy,
        concurrency: 4,
        onError: (error) => assert.fail(String(error)),
      });
      worker.wake();
      await waitFor(
        async () => (await outbox.pendingStats()).length === 0,
        "every event dead-lettered",
        60_000,
      );
      await worker.stop();
      assert.ok(worker.maxHeld <= 4, `held ${worker.maxHeld}`);
      assert.ok(largestWindow <= 8, `read ${largestWindow} rows at once`);
      const events = await outbox.events("h", 1000);
      assert.equal(events.length, 1000);
      assert.ok(events.every((e) => e.state === "dead" && e.attempts === 3 && e.log.length === 3));
    });
  });

  it("keeps one repository's events in order; a failure holds back only that repository", async () => {
    await withOutbox(async (outbox) => {
      await fill(outbox, 6, 2); // repo0: e0 e2 e4, repo1: e1 e3 e5
      const sent: string[] = [];
      let failedOnce = false;
      const worker = new DeliveryWorker({
        outbox,
        webhook: async () => hook,
        send: async (_webhook, event: OutboxEvent) => {
          sent.push(event.id);
          if (event.id === "e0" && !failedOnce) {
            failedOnce = true;
            return answer(503);
          }
          return answer(200);
        },
        retry: policy,
        concurrency: 4,
        random: () => 0.5,
        onError: (error) => assert.fail(String(error)),
      });
      worker.wake();
      await waitFor(
        async () => (await outbox.pendingStats()).length === 0,
        "every event delivered",
      );
      await worker.stop();
      const repo0 = sent.filter((id) => ["e0", "e2", "e4"].includes(id));
      const repo1 = sent.filter((id) => ["e1", "e3", "e5"].includes(id));
      assert.deepEqual(repo0, ["e0", "e0", "e2", "e4"]);
      assert.deepEqual(repo1, ["e1", "e3", "e5"]);
      const e0 = (await outbox.events("h", 10)).find((e) => e.id === "e0");
      assert.deepEqual(
        e0?.log.map((a) => a.status),
        [503, 200],
      );
    });
  });

  it("a stop aborts the attempts in flight and leaves their events pending, uncounted", async () => {
    await withOutbox(async (outbox) => {
      await fill(outbox, 3, 3);
      let started = 0;
      const worker = new DeliveryWorker({
        outbox,
        webhook: async () => hook,
        send: (_webhook, _event, signal) =>
          new Promise<Attempt>((resolve) => {
            started += 1;
            signal.addEventListener("abort", () => resolve(answer(null)));
          }),
        retry: policy,
        concurrency: 4,
        onError: (error) => assert.fail(String(error)),
      });
      worker.wake();
      await waitFor(() => started === 3, "three attempts in flight");
      await worker.stop();
      const events = await outbox.events("h", 10);
      assert.ok(
        events.every((e) => e.state === "pending" && e.attempts === 0 && e.log.length === 0),
      );
    });
  });
});
