import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatStamp, HybridClock, maxCounter, parseStamp } from "./hybrid-clock.ts";

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

  it("carries a full counter into the physical part instead of overflowing it", () => {
    const clock = new HybridClock("a", () => 1_000);
    // A peer's stamp with the counter at its limit (its clock ahead, ours catching up).
    const peer = formatStamp(2_000, maxCounter, "b");
    clock.observe(peer);
    const next = clock.next();
    assert.ok(next > peer, "string order is still clock order");
    assert.deepEqual(parseStamp(next), { physical: 2_001, counter: 0, replicaId: "a" });
  });

  it("issues more than a million ordered, parseable stamps within one millisecond", () => {
    const clock = new HybridClock("a", () => 5_000);
    let previous = clock.next();
    for (let i = 0; i < maxCounter + 10; i += 1) {
      const stamp = clock.next();
      if (!(stamp > previous) || !parseStamp(stamp)) {
        assert.fail(`stamp ${i}: ${stamp} after ${previous}`);
      }
      previous = stamp;
    }
    assert.deepEqual(parseStamp(previous), { physical: 5_001, counter: 9, replicaId: "a" });
  });

  it("gives the nodes of one replica stamps that never meet, whatever each observes", () => {
    const wall = { now: 7_000 };
    const nodes = [0, 1, 2].map((slot) => new HybridClock("a", () => wall.now, { slot, slots: 3 }));
    const seen = new Set<string>();
    for (let round = 0; round < 2_000; round += 1) {
      if (round % 500 === 0) wall.now += 1;
      for (const [i, node] of nodes.entries()) {
        const stamp = node.next();
        const parsed = parseStamp(stamp);
        assert.equal((parsed?.counter ?? -1) % 3, i, stamp);
        assert.ok(!seen.has(stamp), `${stamp} issued twice`);
        seen.add(stamp);
        // Each node sees the others' stamps now and then, as through the shared log.
        if (round % 7 === i) nodes[(i + 1) % 3]?.observe(stamp);
      }
    }
    const last = new HybridClock("a", () => 1, { slot: 2, slots: 3 });
    last.observe(formatStamp(1, maxCounter - 1, "b"));
    assert.deepEqual(parseStamp(last.next()), { physical: 2, counter: 2, replicaId: "a" });
    assert.throws(() => new HybridClock("a", Date.now, { slot: 3, slots: 3 }), RangeError);
  });

  it("says how far a stamp is ahead of its wall time", () => {
    const clock = new HybridClock("a", () => 10_000);
    assert.equal(clock.aheadOfWallMs(formatStamp(70_000, 0, "b")), 60_000);
    assert.equal(clock.aheadOfWallMs(formatStamp(4_000, 0, "b")), -6_000);
  });
});
