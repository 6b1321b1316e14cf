import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OciError } from "../oci/oci-error.ts";
import { VerificationGate } from "./verification-gate.ts";

describe("verification gate", () => {
  it("runs at most `concurrency` checks at once, in arrival order, and refuses past the queue", async () => {
    const gate = new VerificationGate(1, 2);
    let running = 0;
    let most = 0;
    const order: number[] = [];
    const releases: (() => void)[] = [];
    const check = (id: number) => () =>
      new Promise<number>((resolve) => {
        running += 1;
        most = Math.max(most, running);
        order.push(id);
        releases.push(() => {
          running -= 1;
          resolve(id);
        });
      });
    const runs = [gate.run(check(1)), gate.run(check(2)), gate.run(check(3))];
    await assert.rejects(
      gate.run(check(4)),
      (e: unknown) => e instanceof OciError && e.status === 429,
    );
    for (let done = 0; done < 3; done += 1) {
      while (releases.length === 0) await new Promise((r) => setImmediate(r));
      releases.shift()?.();
    }
    assert.deepEqual(await Promise.all(runs), [1, 2, 3]);
    assert.deepEqual(order, [1, 2, 3]);
    assert.equal(most, 1);
  });

  it("frees the slot when a check throws", async () => {
    const gate = new VerificationGate(1, 0);
    await assert.rejects(
      gate.run(() => Promise.reject(new Error("boom"))),
      /boom/,
    );
    assert.equal(await gate.run(() => Promise.resolve("next")), "next");
  });
});
