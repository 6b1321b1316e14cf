import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { it } from "node:test";
import { hasOwnedChunks, ownedChunks, releaseChunk, releasedChunkBytes } from "./chunk-release.ts";

it("frees a chunk that is the whole of its buffer, and counts its bytes", () => {
  const chunk = Buffer.from(randomBytes(65_536));
  const before = releasedChunkBytes();
  releaseChunk(chunk);
  assert.equal(chunk.length, 0, "the chunk is detached from its memory");
  assert.equal(releasedChunkBytes() - before, 65_536);
});

it("leaves alone a view into a larger buffer, which others may share", () => {
  const whole = Buffer.from(randomBytes(4096));
  const copy = Buffer.from(whole);
  const view = whole.subarray(1024, 2048);
  const before = releasedChunkBytes();
  releaseChunk(view);
  releaseChunk(Buffer.from("small")); // from Node's shared pool
  assert.equal(view.length, 1024);
  assert.ok(whole.equals(copy));
  assert.equal(releasedChunkBytes(), before);
});

it("knows the sources marked as owning their chunks", () => {
  const marked = Readable.from([Buffer.from("a")]);
  assert.equal(ownedChunks(marked), marked);
  assert.equal(hasOwnedChunks(marked), true);
  assert.equal(hasOwnedChunks(Readable.from([Buffer.from("b")])), false);
});
