// The S3 driver against a real S3-compatible server (s3rver, started on loopback): the
// shared blob-store suite, plus what only a shared object store has to prove.
import { randomUUID } from "node:crypto";
import { after, before } from "node:test";
import { type S3Server, startS3Server } from "../../test/support/object-store-servers.ts";
import { runBlobStoreSuite } from "./blob-store-suite.ts";
import { runObjectStoreCases } from "./object-store-cases.ts";
import { S3BlobStore } from "./s3-blob-store.ts";

let server: S3Server;
before(async () => {
  server = await startS3Server();
});
after(() => server.stop());

/** Each case gets a prefix of its own in the one bucket: a fresh, empty store. */
const openAt = (prefix: string) =>
  S3BlobStore.open({
    bucket: server.bucket,
    region: server.region,
    endpoint: server.endpoint,
    forcePathStyle: true,
    credentials: server.credentials,
    prefix,
  });

runBlobStoreSuite("s3", async () => {
  const prefix = `case-${randomUUID()}/`;
  return {
    store: openAt(prefix),
    reopen: async () => openAt(prefix),
    cleanup: async () => undefined,
  };
});

runObjectStoreCases("s3", async () => {
  const prefix = `nodes-${randomUUID()}/`;
  return { node: () => openAt(prefix), cleanup: async () => undefined };
});
