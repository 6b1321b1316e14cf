import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RequestSlots } from "./request-slots.ts";

describe("request slots", () => {
  it("holds requests past the cap until a slot is freed, and hands it over", async () => {
    const slots = new RequestSlots(2);
    const a = await slots.acquire("s");
    await slots.acquire("s");
    let third: (() => void) | undefined;
    const waiting = slots.acquire("s").then((release) => {
      third = release;
    });
    await Promise.resolve();
    assert.equal(third, undefined);
    assert.equal(slots.inFlight("s"), 2);
    assert.equal(slots.inFlight("other"), 0, "sources are counted apart");
    a();
    a();
    await waiting;
    assert.equal(slots.inFlight("s"), 2, "handed over, not freed");
  });

  it("lets a waiter give up when its signal aborts", async () => {
    const slots = new RequestSlots(1);
    await slots.acquire("s");
    const aborter = new AbortController();
    const waiting = slots.acquire("s", aborter.signal);
    aborter.abort(new Error("stop"));
    await assert.rejects(waiting, /stop/);
    assert.equal(slots.inFlight("s"), 1);
  });
});
