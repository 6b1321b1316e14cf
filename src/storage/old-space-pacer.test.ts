import assert from "node:assert/strict";
import { it } from "node:test";
import { OldSpacePacer } from "./old-space-pacer.ts";

const MiB = 1024 * 1024;

/** A heap whose use the test sets, and which a collection brings back to `kept`. */
function testHeap(start: number) {
  const heap = {
    used: start,
    kept: start,
    collections: 0,
    usedBytes: () => heap.used,
    collect: () => {
      heap.collections += 1;
      heap.used = heap.kept;
    },
  };
  return heap;
}

it("collects once the heap has grown by the set amount since the lowest check", () => {
  const heap = testHeap(10 * MiB);
  const pacer = new OldSpacePacer(heap, 32 * MiB, 4 * MiB);
  pacer.written(32 * MiB); // first check: the baseline
  heap.used = 13 * MiB;
  pacer.written(32 * MiB);
  assert.equal(heap.collections, 0, "3 MiB of growth is left to V8");
  heap.used = 14.5 * MiB;
  pacer.written(16 * MiB);
  assert.equal(heap.collections, 0, "no check before 32 MiB were written");
  pacer.written(16 * MiB);
  assert.equal(heap.collections, 1);
  assert.equal(pacer.collections, 1);
});

it("measures growth from what the last collection kept, even when V8 collected meanwhile", () => {
  const heap = testHeap(10 * MiB);
  const pacer = new OldSpacePacer(heap, MiB, 4 * MiB);
  pacer.written(MiB);
  heap.used = 15 * MiB;
  heap.kept = 11 * MiB;
  pacer.written(MiB);
  assert.equal(heap.collections, 1);
  // V8's own collection brought the heap below the baseline: growth counts from there.
  heap.used = 9 * MiB;
  pacer.written(MiB);
  heap.used = 12.5 * MiB;
  pacer.written(MiB);
  assert.equal(heap.collections, 1);
  heap.used = 13 * MiB;
  pacer.written(MiB);
  assert.equal(heap.collections, 2);
});
