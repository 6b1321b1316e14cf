// The Azure driver against a real Azure Blob Storage emulator (Azurite, started on
// loopback): the shared blob-store suite, plus what only a shared object store has to prove.
import { randomUUID } from "node:crypto";
import { after, before } from "node:test";
import { BlobServiceClient } from "@azure/storage-blob";
import { type AzuriteServer, startAzurite } from "../../test/support/object-store-servers.ts";
import { AzureBlobStore } from "./azure-blob-store.ts";
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
