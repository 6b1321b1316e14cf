// Opens the blob store the config names (`storage.blobs`): the data folder by default, or
// an S3 bucket or Azure container shared by the nodes of a region. Credentials come from
// the config or the environment and never appear in an error or a log line; the store is
// probed once, so that a wrong bucket or key stops the start with a clear message. The
// object-store drivers are loaded only when chosen: their SDKs cost a replica that does
// not use them about 20 MiB each.
import type { BlobStorageConfig } from "../config/blob-storage-schema.ts";
import type { BlobStore } from "./blob-store.ts";
import { FsBlobStore } from "./fs-blob-store.ts";
import type { WalDatabase } from "./wal-database.ts";

export interface OpenBlobStoreOptions {
  config: BlobStorageConfig;
  /** The data folder, for the filesystem driver. */
  root: string;
  durable: boolean;
  env?: NodeJS.ProcessEnv;
  /** The embedded metadata store's file, for the filesystem driver's small blobs. */
  metadataDatabase?: WalDatabase | undefined;
}

export async function openBlobStore(options: OpenBlobStoreOptions): Promise<BlobStore> {
  const { config, env = process.env } = options;
  switch (config.driver) {
    case "filesystem":
      return FsBlobStore.open({
        root: options.root,
        durable: options.durable,
        metadataDatabase: options.metadataDatabase,
      });
    case "s3": {
      const { S3BlobStore } = await import("./s3-blob-store.ts");
      const store = S3BlobStore.open({
        bucket: config.bucket,
        region: config.region,
        endpoint: config.endpoint,
        forcePathStyle: config.forcePathStyle,
        prefix: config.prefix,
        credentials:
          config.accessKeyId && config.secretAccessKey
            ? { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey }
            : undefined,
        redirectTtlSeconds: config.redirect ? config.redirectTtlSeconds : undefined,
      });
      await probe(() => store.probe(), `S3 bucket ${config.bucket}`);
      return store;
    }
    case "azure": {
      const connectionString = config.connectionString ?? env.AZURE_STORAGE_CONNECTION_STRING;
      if (!config.accountUrl && !connectionString) {
        throw new Error(
          "storage.blobs: the azure driver needs AZURE_STORAGE_CONNECTION_STRING or accountUrl",
        );
      }
      const { AzureBlobStore } = await import("./azure-blob-store.ts");
      const store = AzureBlobStore.open({
        container: config.container,
        prefix: config.prefix,
        redirectTtlSeconds: config.redirect ? config.redirectTtlSeconds : undefined,
        ...(config.accountUrl
          ? {
              accountUrl: config.accountUrl,
              accountName: env.AZURE_STORAGE_ACCOUNT,
              accountKey: config.accountKey ?? env.AZURE_STORAGE_KEY,
            }
          : { connectionString }),
      });
      await probe(() => store.probe(), `Azure container ${config.container}`);
      return store;
    }
  }
}

async function probe(check: () => Promise<void>, what: string): Promise<void> {
  try {
    await check();
  } catch (error) {
    // The SDKs' messages name the request, never the key; the status says enough.
    const e = error as { $metadata?: { httpStatusCode?: number }; statusCode?: number };
    const status = e?.statusCode ?? e?.$metadata?.httpStatusCode;
    const detail = error instanceof Error ? error.message.split("\n")[0] : String(error);
    // No `cause`: the CLI would print a refused connection's cause instead of this line.
    throw new Error(
      `storage.blobs: cannot reach the ${what}: ${detail}${status ? ` (${status})` : ""}`,
    );
  }
}
