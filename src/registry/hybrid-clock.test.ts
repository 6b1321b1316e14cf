import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HybridClock, parseStamp } from "./hybrid-clock.ts";

describe("hybrid clock", () => {
  it("never goes backwards, even when the wall clock does", () => {
    let wall = 1_000;
    const clock = new HybridClock("a", () => wall);
    const first = clock.next();
    wall = 500;
    const second = clock.next();
    const third = clock.next();
    assert.ok(first < second && second < third);
    assert.deepEqual(parseStamp(third), { physical: 1_000, counter: 2, replicaId: "a" });
  });

  it("moves past stamps observed from elsewhere", () => {
    const clock = new HybridClock("a", () => 1_000);
    const peer = new HybridClock("b", () => 9_000).next();
    clock.observe(peer);
    assert.ok(clock.next() > peer);
  });

  it("orders concurrent stamps of equal time by replica id", () => {
    const a = new HybridClock("a", () => 5).next();
    const b = new HybridClock("b", () => 5).next();
    assert.ok(a < b);
  });
});
