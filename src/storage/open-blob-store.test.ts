// The blob-store factory: the driver the config names, and a start that stops with one
// clear line (never the key) when the store cannot be used.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { BlobServiceClient } from "@azure/storage-blob";
import { type AzuriteServer, startAzurite } from "../../test/support/object-store-servers.ts";
import { blobStorageSchema } from "../config/blob-storage-schema.ts";
import { AzureBlobStore } from "./azure-blob-store.ts";
import { FsBlobStore } from "./fs-blob-store.ts";
import { openBlobStore } from "./open-blob-store.ts";

let azurite: AzuriteServer;
let root: string;
before(async () => {
  azurite = await startAzurite();
  await BlobServiceClient.fromConnectionString(azurite.connectionString)
    .getContainerClient("registry")
    .create();
  root = await mkdtemp(join(tmpdir(), "meridian-open-blobs-"));
});
after(async () => {
  await azurite.stop();
  await rm(root, { recursive: true, force: true });
});

const open = (blobs: unknown, env: NodeJS.ProcessEnv = {}) =>
  openBlobStore({ config: blobStorageSchema.parse(blobs), root, durable: false, env });

it("opens the data folder by default and the container the config names", async () => {
  assert.ok((await open({ driver: "filesystem" })) instanceof FsBlobStore);
  const store = await open({ driver: "azure", container: "registry" }, azurite.env);
  assert.ok(store instanceof AzureBlobStore);
});

it("stops with one line naming what is missing or unreachable, never the key", async () => {
  await assert.rejects(
    open({ driver: "azure", container: "registry" }),
    /storage\.blobs: the azure driver needs AZURE_STORAGE_CONNECTION_STRING or accountUrl/,
  );
  await assert.rejects(open({ driver: "azure", container: "absent" }, azurite.env), (error) => {
    assert.match(String(error), /cannot reach the Azure container absent/);
    return true;
  });
  const wrongKey = Buffer.from("not the account key").toString("base64");
  const connectionString = azurite.connectionString.replace(
    /AccountKey=[^;]+/,
    `AccountKey=${wrongKey}`,
  );
  await assert.rejects(
    open({ driver: "azure", container: "registry", connectionString }),
    (error: unknown) => {
      const message = String(error);
      assert.match(message, /storage\.blobs: cannot reach the Azure container registry/);
      assert.ok(!message.includes(wrongKey), message);
      assert.ok(!message.includes("\n"), "one line");
      return true;
    },
  );
  await assert.rejects(
    open({
      driver: "s3",
      bucket: "registry",
      endpoint: "http://127.0.0.1:1",
      forcePathStyle: true,
      accessKeyId: "AKIAEXAMPLE",
      secretAccessKey: "secret-that-never-shows",
    }),
    (error: unknown) => {
      const message = String(error);
      assert.match(message, /storage\.blobs: cannot reach the S3 bucket registry/);
      assert.ok(!message.includes("secret-that-never-shows"), message);
      return true;
    },
  );
});
