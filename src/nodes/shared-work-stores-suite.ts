// The behaviour both drivers of the shared work stores must have (the checkpoints of
// replication, the webhook outbox, the fetch claims), run by shared-work-stores.test.ts
// against the SQLite files and the PostgreSQL tables. `reopen` opens the same data anew,
// as the node that takes the lead after another died does; `claimsOfAnotherProcess`, the
// claims as another process of the replica holds them.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { waitFor } from "../../test/support/wait-for.ts";
import type { CheckpointStore } from "../replication/checkpoint-store.ts";
import type { FetchClaims } from "../replication/fetch-claims.ts";
import { withFixture } from "../testing/with-fixture.ts";
import type { Attempt, NewEvent, OutboxStore } from "../webhooks/outbox-store.ts";

export interface WorkStoresFixture {
  checkpoints: CheckpointStore;
  outbox: OutboxStore;
  reopen(): Promise<{ checkpoints: CheckpointStore; outbox: OutboxStore }>;
  /** Claims held by another process; `ttlMs`: how long its claims last unrenewed. */
  claimsOfAnotherProcess(ttlMs?: number): Promise<FetchClaims>;
  cleanup(): Promise<void>;
}

const event = (n: number, repository = "app", webhook = "h"): NewEvent => ({
  id: `e${n}`,
  webhook,
  eventKey: `k${n}`,
  repository,
  action: "push",
  payload: JSON.stringify({ n }),
  createdAt: 1_000 + n,
});

const answer = (at: number, status: number | null): Attempt => ({
  at,
  status,
  latencyMs: 7,
  excerpt: status === null ? "connection refused" : `status ${status}`,
});

export function runWorkStoresSuite(name: string, open: () => Promise<WorkStoresFixture>) {
  const test = (body: (fixture: WorkStoresFixture) => Promise<void>) => withFixture(open, body);

  describe(`shared work stores: ${name}`, () => {
    it(
      "keeps each peer's checkpoint and the bytes received, across a reopen",
      test(async ({ checkpoints, reopen }) => {
        assert.deepEqual(await checkpoints.get("eastus"), { seq: 0, log: undefined });
        await checkpoints.set("eastus", 41, "log-a");
        await checkpoints.set("eastus", 42, "log-a");
        await checkpoints.set("westus", 7, undefined);
        await checkpoints.addTransferred({ eastus: 100, westus: 0 });
        await checkpoints.addTransferred({ eastus: 5_000_000_000, westus: 3 });
        const again = (await reopen()).checkpoints;
        assert.deepEqual(await again.get("eastus"), { seq: 42, log: "log-a" });
        assert.deepEqual(await again.get("westus"), { seq: 7, log: undefined });
        assert.deepEqual(await again.transferred(), { eastus: 5_000_000_100, westus: 3 });
      }),
    );

    it(
      "adds each event once and moves the cursor with it",
      test(async ({ outbox }) => {
        assert.equal(await outbox.cursor(), undefined);
        assert.equal(await outbox.enqueue([event(1), event(2)], { seq: 10, log: "L" }), 2);
        // The same webhook and event key again (a change read twice after a crash).
        assert.equal(
          await outbox.enqueue([{ ...event(2), id: "other" }, event(3)], { seq: 12, log: "L" }),
          1,
        );
        assert.deepEqual(await outbox.cursor(), { seq: 12, log: "L" });
        assert.deepEqual(
          (await outbox.events("h", 10)).map((e) => [e.id, e.state, e.attempts, e.log.length]),
          [
            ["e3", "pending", 0, 0],
            ["e2", "pending", 0, 0],
            ["e1", "pending", 0, 0],
          ],
        );
        assert.deepEqual(await outbox.pendingStats(), [
          { webhook: "h", depth: 3, oldestCreatedAt: 1_001 },
        ]);
      }),
    );

    it(
      "hands out the head of each repository's queue, and holds it back while it waits to retry",
      test(async ({ outbox }) => {
        await outbox.enqueue([event(1, "a"), event(2, "b"), event(3, "a"), event(4, "b")], {
          seq: 4,
          log: "L",
        });
        const heads = await outbox.due(10_000, 10);
        assert.deepEqual(
          heads.map((e) => e.id),
          ["e1", "e2"],
        );
        const [first] = heads;
        assert.ok(first);
        assert.equal(first.payload, JSON.stringify({ n: 1 }));
        await outbox.settle(first.seq, answer(2_000, 503), {
          state: "pending",
          attempts: 1,
          nextAt: 50_000,
        });
        assert.deepEqual(
          (await outbox.due(10_000, 10)).map((e) => e.id),
          ["e2"],
          "a's head waits for its retry; a's next event waits behind it",
        );
        assert.equal(await outbox.nextWakeAt(), 1_002);
        await outbox.settle(Number(heads[1]?.seq), answer(2_001, 200), {
          state: "delivered",
          attempts: 1,
          nextAt: 1_002,
        });
        assert.deepEqual(
          (await outbox.due(10_000, 10)).map((e) => e.id),
          ["e4"],
        );
        await outbox.settle(first.seq, answer(60_000, 200), {
          state: "delivered",
          attempts: 2,
          nextAt: 50_000,
        });
        const e1 = await outbox.event("e1");
        assert.equal(e1?.state, "delivered");
        assert.equal(e1?.attempts, 2);
        const listed = (await outbox.events("h", 10)).find((e) => e.id === "e1");
        assert.deepEqual(listed?.log, [answer(2_000, 503), answer(60_000, 200)]);
        assert.equal(await outbox.event("nope"), undefined);
      }),
    );

    it(
      "puts a finished event back in the queue, and records a ping with its one attempt",
      test(async ({ outbox }) => {
        await outbox.enqueue([event(1)], { seq: 1, log: "L" });
        const [head] = await outbox.due(5_000, 1);
        assert.ok(head);
        await outbox.settle(head.seq, answer(2_000, null), {
          state: "dead",
          attempts: 3,
          nextAt: 0,
        });
        assert.equal(await outbox.nextWakeAt(), undefined);
        assert.equal(await outbox.redeliver("h", "e1", 9_000), true);
        assert.equal(await outbox.redeliver("h", "unknown", 9_000), false);
        assert.equal(await outbox.redeliver("other-webhook", "e1", 9_000), false);
        const again = await outbox.event("e1");
        assert.deepEqual([again?.state, again?.attempts, again?.nextAt], ["pending", 0, 9_000]);
        await outbox.addSettled(
          { ...event(9), action: "ping", repository: "" },
          answer(9_500, 204),
          "delivered",
        );
        const ping = (await outbox.events("h", 10)).find((e) => e.id === "e9");
        assert.deepEqual(
          [ping?.state, ping?.attempts, ping?.log],
          ["delivered", 1, [answer(9_500, 204)]],
        );
      }),
    );

    it(
      "forgets finished events past their keep, never a pending one",
      test(async ({ outbox }) => {
        await outbox.enqueue([event(1, "a"), event(2, "b"), event(3, "c")], { seq: 3, log: "L" });
        for (const head of await outbox.due(5_000, 10)) {
          if (head.id === "e3") continue;
          await outbox.settle(head.seq, answer(2_000, 200), {
            state: "delivered",
            attempts: 1,
            nextAt: 0,
          });
        }
        await outbox.prune(1_002);
        assert.deepEqual(
          (await outbox.events("h", 10)).map((e) => e.id),
          ["e3", "e2"],
        );
        await outbox.prune(10_000);
        assert.deepEqual(
          (await outbox.events("h", 10)).map((e) => e.id),
          ["e3"],
        );
      }),
    );

    it(
      "leaves what was pending to whoever opens the store next",
      test(async ({ outbox, reopen }) => {
        await outbox.enqueue([event(1), event(2, "b")], { seq: 20, log: "L" });
        const [head] = await outbox.due(5_000, 1);
        assert.ok(head);
        await outbox.settle(head.seq, answer(2_000, 200), {
          state: "delivered",
          attempts: 1,
          nextAt: 0,
        });
        const next = (await reopen()).outbox;
        assert.deepEqual(await next.cursor(), { seq: 20, log: "L" });
        assert.deepEqual(
          (await next.due(5_000, 10)).map((e) => e.id),
          ["e2"],
        );
      }),
    );

    it(
      "lets one process at a time fetch a blob, and the next once it is released",
      test(async ({ claimsOfAnotherProcess }) => {
        const [a, b] = [await claimsOfAnotherProcess(), await claimsOfAnotherProcess()];
        const held = await a.claim("sha256:aa");
        assert.ok(held, "the first claim is granted");
        assert.equal(await b.claim("sha256:aa"), undefined, "the second waits");
        const other = await b.claim("sha256:bb");
        assert.ok(other, "another blob is anyone's");
        await held.release();
        const next = await b.claim("sha256:aa");
        assert.ok(next, "released: the next process takes it");
        assert.equal(await a.claim("sha256:aa"), undefined);
        await next.release();
        await other.release();
      }),
    );

    it(
      "hands the fetch of a process that stopped renewing on once its claim expires",
      test(async ({ claimsOfAnotherProcess }) => {
        const dead = await claimsOfAnotherProcess(1_500);
        const alive = await claimsOfAnotherProcess(1_500);
        assert.ok(await dead.claim("sha256:cc"));
        // Gone without releasing: its claim is no longer renewed, as after a kill.
        await dead.close();
        assert.equal(await alive.claim("sha256:cc"), undefined, "held until it expires");
        let taken: Awaited<ReturnType<FetchClaims["claim"]>>;
        await waitFor(
          async () => {
            taken = await alive.claim("sha256:cc");
            return taken !== undefined;
          },
          "the expired claim to be taken over",
          10_000,
          50,
        );
        await taken?.release();
      }),
    );
  });
}
