// The behaviour every blob-store driver must have. A driver's test file calls
// `runBlobStoreSuite` with a factory; nothing here knows which driver it tests.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { PassThrough, Readable, Writable } from "node:stream";
import { text } from "node:stream/consumers";
import { describe, it } from "node:test";
import { type Digest, digestOf } from "../oci/digest.ts";
import { withFixture } from "../testing/with-fixture.ts";
import {
  BlobNotFoundError,
  type BlobStore,
  DigestMismatchError,
  SizeMismatchError,
  UploadNotFoundError,
  UploadOffsetError,
} from "./blob-store.ts";

export interface BlobStoreFixture {
  store: BlobStore;
  /** A new driver instance over the same storage, as after a process restart. */
  reopen(): Promise<BlobStore>;
  cleanup(): Promise<void>;
}

const uploadId = "0f8fad5b-d9cb-469f-a165-70867728950e";

export function runBlobStoreSuite(driver: string, open: () => Promise<BlobStoreFixture>): void {
  describe(`${driver} blob store`, () => {
    const withStore = (body: (fixture: BlobStoreFixture) => Promise<void>) =>
      withFixture(open, body);

    it(
      "ingests a verified blob, then stats and reads it whole and by range",
      withStore(async ({ store }) => {
        const bytes = Buffer.from("hello, registry");
        const digest = digestOf(bytes);
        assert.equal(await store.stat(digest), undefined);
        assert.deepEqual(await store.ingest(digest, Readable.from([bytes])), {
          size: bytes.length,
        });
        assert.deepEqual(await store.stat(digest), { size: bytes.length });
        assert.equal(await text(await store.read(digest)), "hello, registry");
        assert.equal(await text(await store.read(digest, { start: 7, end: 14 })), "registry");
      }),
    );

    it(
      "sends a blob or a range of it into a writable, across several buffers",
      withStore(async ({ store }) => {
        const bytes = randomBytes(5 * 1024 * 1024 + 17);
        const digest = digestOf(bytes);
        await store.ingest(digest, Readable.from([bytes]));
        const collect = async (start: number, end: number) => {
          const chunks: Buffer[] = [];
          const sink = new Writable({
            write(chunk: Buffer, _encoding, done) {
              chunks.push(Buffer.from(chunk));
              setImmediate(done);
            },
          });
          await store.sendTo(digest, { start, end }, sink);
          return Buffer.concat(chunks);
        };
        assert.deepEqual(await collect(0, bytes.length - 1), bytes);
        assert.deepEqual(await collect(1000, 3_000_000), bytes.subarray(1000, 3_000_001));
        const missing = digestOf(Buffer.from("absent"));
        await assert.rejects(
          store.sendTo(missing, { start: 0, end: 1 }, new Writable()),
          BlobNotFoundError,
        );
      }),
    );

    it(
      "stops sending when the writable is destroyed",
      withStore(async ({ store }) => {
        const bytes = randomBytes(8 * 1024 * 1024);
        const digest = digestOf(bytes);
        await store.ingest(digest, Readable.from([bytes]));
        let received = 0;
        const sink = new Writable({
          write(chunk: Buffer, _encoding, done) {
            received += chunk.length;
            if (received > 1024 * 1024) sink.destroy(new Error("client reset"));
            else done();
          },
        });
        sink.on("error", () => undefined);
        await assert.rejects(store.sendTo(digest, { start: 0, end: bytes.length - 1 }, sink));
        assert.ok(received < bytes.length);
      }),
    );

    it(
      "stores nothing when the content does not match its digest",
      withStore(async ({ store }) => {
        const claimed = digestOf(Buffer.from("expected"));
        await assert.rejects(
          store.ingest(claimed, Readable.from([Buffer.from("other")])),
          DigestMismatchError,
        );
        assert.equal(await store.stat(claimed), undefined);
        await assert.rejects(store.read(claimed), BlobNotFoundError);
      }),
    );

    it(
      "stores nothing when the length differs from the expected size",
      withStore(async ({ store }) => {
        const bytes = Buffer.from("twelve bytes");
        const digest = digestOf(bytes);
        await assert.rejects(
          store.ingest(digest, Readable.from([bytes]), { expectedSize: 99 }),
          SizeMismatchError,
        );
        assert.equal(await store.stat(digest), undefined);
      }),
    );

    it(
      "stores nothing when the source fails midway",
      withStore(async ({ store }) => {
        const digest = digestOf(Buffer.from("never complete"));
        const failing = new Readable({
          read() {
            this.push(Buffer.from("never "));
            this.destroy(new Error("connection reset"));
          },
        });
        await assert.rejects(store.ingest(digest, failing), /connection reset/);
        assert.equal(await store.stat(digest), undefined);
      }),
    );

    it(
      "verifies sha512 digests",
      withStore(async ({ store }) => {
        const bytes = randomBytes(1000);
        const digest = digestOf(bytes, "sha512");
        await store.ingest(digest, Readable.from([bytes]));
        assert.deepEqual(await store.stat(digest), { size: 1000 });
      }),
    );

    it(
      "assembles an upload from ordered chunks and publishes it on commit",
      withStore(async ({ store }) => {
        const bytes = randomBytes(300_000);
        const digest = digestOf(bytes);
        const created = await store.createUpload(uploadId, "library/app");
        assert.equal(created.size, 0);
        assert.equal(
          await store.appendUpload(uploadId, 0, Readable.from([bytes.subarray(0, 100_000)])),
          100_000,
        );
        await assert.rejects(
          store.appendUpload(uploadId, 50, Readable.from([bytes.subarray(50)])),
          (error: unknown) => error instanceof UploadOffsetError && error.actual === 100_000,
        );
        assert.equal(
          await store.appendUpload(uploadId, 100_000, Readable.from([bytes.subarray(100_000)])),
          300_000,
        );
        const status = await store.getUpload(uploadId);
        assert.equal(status?.repository, "library/app");
        assert.equal(status?.size, 300_000);
        assert.deepEqual(await store.commitUpload(uploadId, digest), { size: 300_000 });
        assert.equal(await store.getUpload(uploadId), undefined);
        assert.deepEqual(await store.stat(digest), { size: 300_000 });
      }),
    );

    it(
      "reads the bytes an upload has received, and refuses an unknown upload",
      withStore(async ({ store }) => {
        const bytes = randomBytes(200_000);
        await store.createUpload(uploadId, "library/app");
        await store.appendUpload(uploadId, 0, Readable.from([bytes.subarray(0, 120_000)]));
        const read = async (start: number, end: number) =>
          Buffer.concat(await (await store.readUpload(uploadId, { start, end })).toArray());
        assert.deepEqual(await read(0, 119_999), bytes.subarray(0, 120_000));
        assert.deepEqual(await read(100_000, 199_999), bytes.subarray(100_000, 120_000));
        await store.deleteUpload(uploadId);
        await assert.rejects(
          store.readUpload(uploadId, { start: 0, end: 9 }),
          (error: unknown) => error instanceof UploadNotFoundError,
        );
      }),
    );

    it(
      "tells an append's caller, in order, how many bytes are readable while it goes on",
      withStore(async ({ store }) => {
        const bytes = randomBytes(5 * 1024 * 1024 + 7);
        await store.createUpload(uploadId, "library/app");
        const seen: number[] = [];
        const total = await store.appendUpload(
          uploadId,
          0,
          Readable.from([bytes]),
          undefined,
          (written) => seen.push(written),
        );
        assert.equal(total, bytes.length);
        assert.ok(seen.length >= 2, `progress reported while writing: ${seen.join(", ")}`);
        assert.deepEqual(
          [...seen].sort((a, b) => a - b),
          seen,
          "in order",
        );
        assert.equal(seen[seen.length - 1], bytes.length);
        const head = Buffer.concat(
          await (await store.readUpload(uploadId, { start: 0, end: (seen[0] ?? 1) - 1 })).toArray(),
        );
        assert.deepEqual(head, bytes.subarray(0, seen[0]));
      }),
    );

    it(
      "resumes an upload after the store is reopened",
      withStore(async ({ store, reopen }) => {
        const bytes = randomBytes(70_000);
        const digest = digestOf(bytes, "sha512");
        await store.createUpload(uploadId, "r");
        await store.appendUpload(uploadId, 0, Readable.from([bytes.subarray(0, 30_000)]));
        const again = await reopen();
        assert.equal((await again.getUpload(uploadId))?.size, 30_000);
        await again.appendUpload(uploadId, 30_000, Readable.from([bytes.subarray(30_000)]));
        await again.commitUpload(uploadId, digest);
        assert.deepEqual(await again.stat(digest), { size: 70_000 });
      }),
    );

    it(
      "discards an upload whose content does not match the digest",
      withStore(async ({ store }) => {
        await store.createUpload(uploadId, "r");
        await store.appendUpload(uploadId, 0, Readable.from([Buffer.from("abc")]));
        const wrong = digestOf(Buffer.from("abd"));
        await assert.rejects(store.commitUpload(uploadId, wrong), DigestMismatchError);
        assert.equal(await store.stat(wrong), undefined);
        assert.equal(await store.getUpload(uploadId), undefined);
      }),
    );

    it(
      "lists, deletes and rejects unknown uploads",
      withStore(async ({ store }) => {
        await store.createUpload(uploadId, "r");
        assert.deepEqual(
          (await store.listUploads()).map((u) => u.id),
          [uploadId],
        );
        await store.deleteUpload(uploadId);
        assert.deepEqual(await store.listUploads(), []);
        assert.equal(await store.getUpload("../../etc/passwd"), undefined);
        await assert.rejects(
          store.appendUpload(uploadId, 0, Readable.from([Buffer.from("x")])),
          UploadNotFoundError,
        );
        await assert.rejects(
          store.commitUpload(uploadId, digestOf(Buffer.from("x"))),
          UploadNotFoundError,
        );
      }),
    );

    /** An append whose client sent `bytes` and then went silent without closing. */
    const stalledAppend = (store: BlobStore, bytes: Buffer) => {
      const source = new PassThrough();
      source.write(bytes);
      const append = store.appendUpload(uploadId, 0, source);
      const outcome = append.then(
        () => "finished",
        (error: unknown) => error,
      );
      return { source, outcome };
    };
    const within = async <T>(work: Promise<T>, ms: number, what: string): Promise<T> => {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} still waiting after ${ms} ms`)), ms);
      });
      try {
        return await Promise.race([work, deadline]);
      } finally {
        clearTimeout(timer);
      }
    };

    it(
      "cancels an upload at once while an append to it is stalled",
      withStore(async ({ store }) => {
        await store.createUpload(uploadId, "r");
        const stalled = stalledAppend(store, Buffer.from("partial"));
        await within(store.deleteUpload(uploadId), 2000, "deleteUpload behind a stalled append");
        assert.equal(await store.getUpload(uploadId), undefined);
        assert.ok((await within(stalled.outcome, 2000, "the stalled append")) instanceof Error);
        assert.ok(stalled.source.destroyed, "the stalled source is abandoned");
      }),
    );

    it(
      "lets a newer append or commit take over an upload from a stalled append",
      withStore(async ({ store }) => {
        await store.createUpload(uploadId, "r");
        const first = stalledAppend(store, Buffer.from("stale"));
        const bytes = Buffer.from("the retried chunk");
        const size = await within(
          store.appendUpload(uploadId, 0, Readable.from([bytes])),
          2000,
          "an append behind a stalled append",
        );
        assert.equal(size, bytes.length);
        assert.ok((await within(first.outcome, 2000, "the stalled append")) instanceof Error);
        const second = new PassThrough();
        second.write(Buffer.from("more"));
        const secondOutcome = store.appendUpload(uploadId, bytes.length, second).catch((e) => e);
        const committed = await within(
          store.commitUpload(uploadId, digestOf(bytes)),
          2000,
          "a commit behind a stalled append",
        );
        assert.deepEqual(committed, { size: bytes.length });
        assert.ok(
          (await within(secondOutcome, 2000, "the second stalled append")) instanceof Error,
        );
        assert.deepEqual(await store.stat(digestOf(bytes)), { size: bytes.length });
      }),
    );

    it(
      "deletes a blob",
      withStore(async ({ store }) => {
        const bytes = Buffer.from("to delete");
        const digest: Digest = digestOf(bytes);
        await store.ingest(digest, Readable.from([bytes]));
        assert.equal(await store.delete(digest), true);
        assert.equal(await store.delete(digest), false);
        assert.equal(await store.stat(digest), undefined);
      }),
    );

    it(
      "lists published blobs in digest order, page by page, with their size and age",
      withStore(async ({ store }) => {
        const before = Date.now() - 1000;
        const blobs = new Map<Digest, number>();
        for (let i = 0; i < 7; i += 1) {
          const bytes = Buffer.from(`listed blob ${i}`.repeat(i + 1));
          blobs.set(digestOf(bytes), bytes.length);
          await store.ingest(digestOf(bytes), Readable.from([bytes]));
        }
        // An upload in progress is not a published blob.
        await store.createUpload(uploadId, "repo");
        const seen: Digest[] = [];
        let after: Digest | undefined;
        for (;;) {
          const page = await store.listBlobs(after, 3);
          for (const entry of page) {
            assert.equal(entry.size, blobs.get(entry.digest));
            assert.ok(entry.modifiedAt.getTime() >= before);
            seen.push(entry.digest);
          }
          if (page.length < 3) break;
          after = page.at(-1)?.digest;
        }
        assert.deepEqual(seen, [...blobs.keys()].sort());
        const first = seen[0] as Digest;
        assert.equal((await store.published(first))?.size, blobs.get(first));
        await store.delete(first);
        assert.equal(await store.published(first), undefined);
        assert.deepEqual(
          (await store.listBlobs(undefined, 100)).map((b) => b.digest),
          seen.slice(1),
        );
      }),
    );
  });
}
