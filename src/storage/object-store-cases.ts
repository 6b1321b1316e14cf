// What the object-store drivers (S3, Azure) must prove beyond the shared blob-store suite:
// several nodes share one bucket or container, a blob is visible only once verified, and
// memory stays bounded whatever the blob size. Each driver's test file calls
// `runObjectStoreCases` with a way to open another node over the same storage.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { Readable, Writable } from "node:stream";
import { describe, it } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { type Digest, digestOf } from "../oci/digest.ts";
import { withFixture } from "../testing/with-fixture.ts";
import { type BlobStore, DigestMismatchError } from "./blob-store.ts";

export interface ObjectStoreFixture {
  /** A new store instance with its own client over the same storage: another node. */
  node(): BlobStore;
  cleanup(): Promise<void>;
}

const uploadId = "7c4f2a1e-9b3d-4e5f-8a6b-1c2d3e4f5a6b";
const MiB = 1024 * 1024;

/** `size` bytes made of one random MiB, in 64 KiB chunks that are views, not copies. */
function* patterned(seed: Buffer, size: number): Generator<Buffer> {
  for (let at = 0; at < size; at += 64 * 1024) {
    const start = at % seed.length;
    yield seed.subarray(start, start + Math.min(64 * 1024, size - at));
  }
}

function digestOfPattern(seed: Buffer, size: number): Digest {
  const hash = createHash("sha256");
  for (const chunk of patterned(seed, size)) hash.update(chunk);
  return `sha256:${hash.digest("hex")}` as Digest;
}

/**
 * V8 lets up to 64 MiB of garbage outside its heap (socket chunks, say) pile up before it
 * collects, which at this blob size would hide whether anything holds the blob: a minor
 * collection before each sample leaves what is still referenced.
 */
setFlagsFromString("--expose-gc");
const collect = runInNewContext("gc") as (options?: { type: "minor" | "major" }) => void;

/** Samples the process's RSS while `work` runs; resolves the peak growth over the start. */
async function peakRssGrowth(work: () => Promise<void>): Promise<number> {
  collect({ type: "major" });
  const start = process.memoryUsage().rss;
  let peak = start;
  const sample = () => {
    collect({ type: "minor" });
    peak = Math.max(peak, process.memoryUsage().rss);
  };
  const sampler = setInterval(sample, 10);
  try {
    await work();
  } finally {
    clearInterval(sampler);
  }
  sample();
  return peak - start;
}

export function runObjectStoreCases(driver: string, open: () => Promise<ObjectStoreFixture>): void {
  describe(`${driver} blob store across nodes`, () => {
    const withNodes = (body: (fixture: ObjectStoreFixture) => Promise<void>) =>
      withFixture(open, body);

    it(
      "lets an upload created on one node be appended to and committed on another",
      withNodes(async ({ node }) => {
        const first = node();
        const second = node();
        const bytes = randomBytes(9 * MiB + 123);
        const digest = digestOf(bytes);
        await first.createUpload(uploadId, "library/app");
        await first.appendUpload(uploadId, 0, Readable.from([bytes.subarray(0, 5 * MiB)]));
        assert.equal((await second.getUpload(uploadId))?.size, 5 * MiB);
        assert.deepEqual(
          (await second.listUploads()).map((u) => u.id),
          [uploadId],
        );
        await second.appendUpload(uploadId, 5 * MiB, Readable.from([bytes.subarray(5 * MiB)]));
        const head = await first.readUpload(uploadId, { start: 5 * MiB - 10, end: 5 * MiB + 9 });
        assert.deepEqual(
          Buffer.concat(await head.toArray()),
          bytes.subarray(5 * MiB - 10, 5 * MiB + 10),
        );
        assert.deepEqual(await second.commitUpload(uploadId, digest), { size: bytes.length });
        assert.equal(await first.getUpload(uploadId), undefined);
        assert.deepEqual(await first.stat(digest), { size: bytes.length });
        const read = Buffer.concat(await (await first.read(digest)).toArray());
        assert.ok(read.equals(bytes), "the blob read on the first node is the bytes sent");
      }),
    );

    it(
      "never makes a blob whose digest does not verify visible under its key",
      withNodes(async ({ node }) => {
        const store = node();
        const observer = node();
        const seed = randomBytes(MiB);
        const size = 30 * MiB;
        // The digest of other bytes: those of the stream with its last byte flipped.
        const claimedBytes = Buffer.concat([...patterned(seed, size)]);
        claimedBytes[size - 1] = (claimedBytes[size - 1] ?? 0) ^ 0xff;
        const claimed = digestOf(claimedBytes);
        let sent = 0;
        const seenMidway: unknown[] = [];
        async function* source() {
          for (const chunk of patterned(seed, size)) {
            sent += chunk.length;
            // Past 25 MiB the first parts are staged: still nothing under the key.
            if (sent === 25 * MiB) seenMidway.push(await observer.stat(claimed));
            yield chunk;
          }
        }
        await assert.rejects(store.ingest(claimed, Readable.from(source())), DigestMismatchError);
        assert.deepEqual(seenMidway, [undefined]);
        assert.equal(await observer.stat(claimed), undefined);
        assert.deepEqual(await observer.listBlobs(undefined, 10), []);

        // The same through an upload committed with the wrong digest.
        await store.createUpload(uploadId, "r");
        await store.appendUpload(uploadId, 0, Readable.from(patterned(seed, size)));
        await assert.rejects(store.commitUpload(uploadId, claimed), DigestMismatchError);
        assert.equal(await observer.stat(claimed), undefined);
        assert.equal(await observer.getUpload(uploadId), undefined);
        assert.deepEqual(await observer.listBlobs(undefined, 10), []);
      }),
    );

    it(
      "keeps memory bounded by its part buffers while a 64 MiB blob streams in and out",
      withNodes(async ({ node }) => {
        const store = node();
        const seed = randomBytes(MiB);
        const size = 64 * MiB;
        const digest = digestOfPattern(seed, size);
        // Warm up the clients and fill the part pools (three 8 MiB ingest parts, two 4 MiB
        // upload chunks), so that the measure is of the stream and not of the pools.
        const warm = randomBytes(17 * MiB);
        await store.ingest(digestOf(warm), Readable.from([warm]));
        await store.createUpload(uploadId, "r");
        await store.appendUpload(uploadId, 0, Readable.from([warm]));
        await store.commitUpload(uploadId, digestOf(warm));
        await store.delete(digestOf(warm));
        const growth = await peakRssGrowth(async () => {
          await store.ingest(digest, Readable.from(patterned(seed, size)));
          await store.createUpload(uploadId, "r");
          await store.appendUpload(uploadId, 0, Readable.from(patterned(seed, size)));
          await store.commitUpload(uploadId, digest);
          let read = 0;
          for await (const chunk of await store.read(digest)) read += (chunk as Buffer).length;
          assert.equal(read, size);
          // A client slower than the store: backpressure, not buffering, holds the bytes.
          let sent = 0;
          const slow = new Writable({
            highWaterMark: 64 * 1024,
            write(chunk: Buffer, _encoding, done) {
              sent += chunk.length;
              setTimeout(done, sent % (4 * MiB) < chunk.length ? 5 : 0);
            },
          });
          await store.sendTo(digest, { start: 0, end: size - 1 }, slow);
          assert.equal(sent, size);
        });
        assert.deepEqual(await store.stat(digest), { size });
        assert.ok(
          growth < size / 4,
          `RSS grew by ${(growth / MiB).toFixed(1)} MiB for a ${size / MiB} MiB blob`,
        );
      }),
    );
  });
}
