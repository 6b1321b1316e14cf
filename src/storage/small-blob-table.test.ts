// The filesystem driver's small-blob table seen through the store: which blobs become rows
// and which files, that readers find both, and that the two list as one store.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { access } from "node:fs/promises";
import { join } from "node:path";
import { PassThrough, Readable, Writable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { it } from "node:test";
import { withTempFolder } from "../../test/support/temp-folder.ts";
import { type Digest, digestHex, digestOf } from "../oci/digest.ts";
import { DigestMismatchError, SizeMismatchError } from "./blob-store.ts";
import { FsBlobStore } from "./fs-blob-store.ts";
import { smallBlobBytes, smallBlobFile } from "./small-blob-table.ts";

const isFile = (root: string, digest: Digest) => {
  const hex = digestHex(digest);
  return access(join(root, "blobs", "sha256", hex.slice(0, 2), hex)).then(
    () => true,
    () => false,
  );
};

/** Chunks of at most 1000 bytes, so that the limit falls inside a chunk. */
const chunked = (bytes: Buffer) =>
  Readable.from(
    Array.from({ length: Math.ceil(bytes.length / 1000) }, (_, i) =>
      bytes.subarray(i * 1000, (i + 1) * 1000),
    ),
  );

it("keeps a blob of at most 64 KiB as a row and a larger one as a file, with or without its size", () =>
  withTempFolder("meridian-small-blobs-", async (root) => {
    const store = await FsBlobStore.open({ root });
    for (const size of [0, 1, 4096, smallBlobBytes, smallBlobBytes + 1, 200_000]) {
      for (const announced of [true, false]) {
        const bytes = randomBytes(size);
        const digest = digestOf(bytes);
        const options = announced ? { expectedSize: size } : {};
        assert.deepEqual(await store.ingest(digest, chunked(bytes), options), { size });
        assert.equal(await isFile(root, digest), size > smallBlobBytes, `${size} bytes`);
        assert.deepEqual(await store.stat(digest), { size });
        assert.ok((await buffer(await store.read(digest))).equals(bytes));
      }
    }
    await access(join(root, smallBlobFile));
  }));

it("reads, ranges, sends and dates a row, and keeps it across a reopen", () =>
  withTempFolder("meridian-small-blobs-", async (root) => {
    const bytes = Buffer.from("a small config blob");
    const digest = digestOf(bytes);
    const before = Date.now();
    await (await FsBlobStore.open({ root })).ingest(digest, Readable.from([bytes]));
    const store = await FsBlobStore.open({ root });
    assert.equal(await isFile(root, digest), false);
    const part = await buffer(await store.read(digest, { start: 2, end: 6 }));
    assert.equal(part.toString(), "small");
    const sent: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        sent.push(chunk);
        done();
      },
    });
    await store.sendTo(digest, { start: 8, end: 13 }, sink);
    assert.equal(Buffer.concat(sent).toString(), "config");
    const published = await store.published(digest);
    assert.equal(published?.size, bytes.length);
    assert.ok((published?.modifiedAt.getTime() ?? 0) >= before - 1000);
  }));

it("stores nothing when a small body does not match its digest or its size", () =>
  withTempFolder("meridian-small-blobs-", async (root) => {
    const store = await FsBlobStore.open({ root });
    const bytes = Buffer.from("the body");
    const other = digestOf(Buffer.from("another body"));
    await assert.rejects(store.ingest(other, Readable.from([bytes])), DigestMismatchError);
    assert.equal(await store.stat(other), undefined);
    const digest = digestOf(bytes);
    await assert.rejects(
      store.ingest(digest, Readable.from([bytes]), { expectedSize: 3 }),
      SizeMismatchError,
    );
    assert.equal(await store.stat(digest), undefined);
    assert.deepEqual(await store.listBlobs(undefined, 10), []);
  }));

it("fails a small ingest whose source fails, and a large one that fails after the limit", () =>
  withTempFolder("meridian-small-blobs-", async (root) => {
    const store = await FsBlobStore.open({ root });
    for (const sent of [100, smallBlobBytes + 5000]) {
      const source = new PassThrough();
      source.write(randomBytes(sent));
      setImmediate(() => source.destroy(new Error("connection reset")));
      const claimed = digestOf(randomBytes(8));
      await assert.rejects(store.ingest(claimed, source), /connection reset/);
      assert.equal(await store.stat(claimed), undefined);
    }
    assert.deepEqual(await store.listBlobs(undefined, 10), []);
  }));

it("lists rows and files as one store in digest order, page by page, and deletes either", () =>
  withTempFolder("meridian-small-blobs-", async (root) => {
    const store = await FsBlobStore.open({ root });
    const digests: Digest[] = [];
    for (let i = 0; i < 12; i += 1) {
      const bytes = randomBytes(i % 2 === 0 ? 100 : smallBlobBytes + 100);
      const digest = digestOf(bytes);
      await store.ingest(digest, Readable.from([bytes]));
      digests.push(digest);
    }
    digests.sort();
    const listed: Digest[] = [];
    let after: Digest | undefined;
    for (;;) {
      const page = await store.listBlobs(after, 5);
      if (page.length === 0) break;
      listed.push(...page.map((blob) => blob.digest));
      after = page.at(-1)?.digest;
    }
    assert.deepEqual(listed, digests);
    for (const digest of digests) assert.equal(await store.delete(digest), true);
    for (const digest of digests) assert.equal(await store.delete(digest), false);
    assert.deepEqual(await store.listBlobs(undefined, 20), []);
  }));

it("shares the rows between two stores over one data folder, as workers do", () =>
  withTempFolder("meridian-small-blobs-", async (root) => {
    const first = await FsBlobStore.open({ root });
    const second = await FsBlobStore.open({ root });
    const bytes = Buffer.from("written by one worker");
    const digest = digestOf(bytes);
    await first.ingest(digest, Readable.from([bytes]));
    assert.ok((await buffer(await second.read(digest))).equals(bytes));
    assert.equal(await second.delete(digest), true);
    assert.equal(await first.stat(digest), undefined);
  }));
