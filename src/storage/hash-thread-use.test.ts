// Which writes start the hashing thread, in a process of its own (node --test runs each
// file in one): small blobs, whether ingested whole or through an upload session, are
// hashed on the event loop, so a replica that only ever sees them never pays the thread's
// memory; a large upload starts it.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { it } from "node:test";
import { digestOf } from "../oci/digest.ts";
import { FsBlobStore } from "./fs-blob-store.ts";
import { hashThreadRunning } from "./hash-thread.ts";

it("hashes small blobs and small upload sessions without the thread, and starts it for a large upload", async () => {
  const root = await mkdtemp(join(tmpdir(), "meridian-hash-thread-"));
  try {
    const store = await FsBlobStore.open({ root });
    const small = randomBytes(4096);
    await store.ingest(digestOf(small), Readable.from([small]));
    const session = "0f8fad5b-d9cb-469f-a165-70867728950e";
    await store.createUpload(session, "app");
    await store.appendUpload(session, 0, Readable.from([small.subarray(0, 1000)]));
    await store.appendUpload(session, 1000, Readable.from([small.subarray(1000)]));
    assert.deepEqual(await store.commitUpload(session, digestOf(small)), { size: small.length });
    assert.equal(hashThreadRunning(), false, "no thread for small writes");

    const large = randomBytes(3 * 1024 * 1024);
    const upload = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
    await store.createUpload(upload, "app");
    await store.appendUpload(upload, 0, Readable.from([large]));
    assert.deepEqual(await store.commitUpload(upload, digestOf(large)), { size: large.length });
    assert.equal(hashThreadRunning(), true, "the thread hashes a large upload");
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
