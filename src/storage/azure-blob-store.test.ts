// The Azure driver against a real Azure Blob Storage emulator (Azurite, started on
// loopback): the shared blob-store suite, plus what only a shared object store has to prove.
import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { PassThrough, Readable } from "node:stream";
import { after, before, it } from "node:test";
import { BlobServiceClient } from "@azure/storage-blob";
import { type AzuriteServer, startAzurite } from "../../test/support/object-store-servers.ts";
import { AzureBlobStore } from "./azure-blob-store.ts";
import { UploadOffsetError, UploadSupersededError } from "./blob-store.ts";
import { runBlobStoreSuite } from "./blob-store-suite.ts";
import { runObjectStoreCases } from "./object-store-cases.ts";

const container = "meridian-test";
let server: AzuriteServer;
before(async () => {
  server = await startAzurite();
  await BlobServiceClient.fromConnectionString(server.connectionString)
    .getContainerClient(container)
    .create();
});
after(() => server.stop());

/** Each case gets a prefix of its own in the one container: a fresh, empty store. */
const openAt = (prefix: string) =>
  AzureBlobStore.open({ container, connectionString: server.connectionString, prefix });

runBlobStoreSuite("azure", async () => {
  const prefix = `case-${randomUUID()}/`;
  return {
    store: openAt(prefix),
    reopen: async () => openAt(prefix),
    cleanup: async () => undefined,
  };
});

runObjectStoreCases("azure", async () => {
  const prefix = `nodes-${randomUUID()}/`;
  return { node: () => openAt(prefix), cleanup: async () => undefined };
});

it("refuses an append from a node whose view of the upload went stale", async () => {
  const prefix = `stale-${randomUUID()}/`;
  const first = openAt(prefix);
  const second = openAt(prefix);
  const id = "3b9d6f2a-1c4e-4f8a-9b7d-2e6c5a4f3d1b";
  await first.createUpload(id, "r");
  // The second node starts an append at 0 whose bytes come late; meanwhile the first node
  // appends at 0. Whichever way the race goes, the late append must fail and leave the
  // first node's bytes as they are (its block list is committed under the blob's ETag).
  const late = new PassThrough();
  const lateAppend = second.appendUpload(id, 0, late).then(
    () => "finished",
    (error: unknown) => error,
  );
  const bytes = randomBytes(100_000);
  await first.appendUpload(id, 0, Readable.from([bytes]));
  late.end(Buffer.from("stale bytes"));
  const outcome = await lateAppend;
  assert.ok(
    outcome instanceof UploadOffsetError || outcome instanceof UploadSupersededError,
    String(outcome),
  );
  const received = await first.readUpload(id, { start: 0, end: bytes.length - 1 });
  assert.ok(Buffer.concat(await received.toArray()).equals(bytes));
  assert.equal((await second.getUpload(id))?.size, bytes.length);
});
