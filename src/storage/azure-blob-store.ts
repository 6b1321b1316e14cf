// The Azure Blob Storage driver. Published blobs are immutable block blobs at
// blobs/<algorithm>/<hex> (object-key-layout.ts); an ingest stages blocks at that name
// while hashing and commits the block list only once the digest verified
// (azure-staged-object.ts), so a blob at a blob name is always a verified blob. Upload
// sessions live in the container too (azure-upload-sessions.ts), shared by every node.
import type { Readable, Writable } from "node:stream";
import {
  AnonymousCredential,
  BlobSASPermissions,
  BlobServiceClient,
  type BlockBlobClient,
  type ContainerClient,
  StorageSharedKeyCredential,
} from "@azure/storage-blob";
import type { ByteRange } from "../oci/content-range.ts";
import type { Digest } from "../oci/digest.ts";
import { AzureStagedObject, isAzureNotFound } from "./azure-staged-object.ts";
import { AzureUploadSessions } from "./azure-upload-sessions.ts";
import {
  type BlobInfo,
  BlobNotFoundError,
  type BlobStore,
  type IngestOptions,
  type StoredBlob,
} from "./blob-store.ts";
import { ObjectKeyLayout } from "./object-key-layout.ts";
import { sendStream } from "./send-stream.ts";
import { SessionBackedStore } from "./session-backed-store.ts";
import { ingestVerified } from "./staged-object.ts";

export interface AzureBlobStoreOptions {
  container: string;
  /** A storage connection string (it carries the account key: keep it in the environment). */
  connectionString?: string | undefined;
  /** https://<account>.blob.core.windows.net, with a SAS query when no key is given. */
  accountUrl?: string | undefined;
  accountName?: string | undefined;
  accountKey?: string | undefined;
  /** Blob names start with this (a folder of a shared container). */
  prefix?: string | undefined;
  /** Blob reads redirect to SAS URLs valid this long (needs the account key). */
  redirectTtlSeconds?: number | undefined;
}

export class AzureBlobStore extends SessionBackedStore implements BlobStore {
  private readonly layout: ObjectKeyLayout;
  protected readonly uploads: AzureUploadSessions;
  /** The continuation marker after the last digest of a listing page, by that digest. */
  private readonly listMarkers = new Map<Digest, string>();

  constructor(
    private readonly container: ContainerClient,
    prefix = "",
    private readonly redirectTtlSeconds?: number,
  ) {
    super();
    this.layout = new ObjectKeyLayout(prefix);
    this.uploads = new AzureUploadSessions({
      container,
      layout: this.layout,
      stage: (digest) => new AzureStagedObject(this.blob(digest)),
    });
  }

  static open(options: AzureBlobStoreOptions): AzureBlobStore {
    const container = serviceClient(options).getContainerClient(options.container);
    if (
      options.redirectTtlSeconds &&
      !(container.credential instanceof StorageSharedKeyCredential)
    ) {
      throw new Error(
        "redirects to SAS URLs need the account key (a connection string or accountKey)",
      );
    }
    return new AzureBlobStore(container, options.prefix, options.redirectTtlSeconds);
  }

  /** Throws unless the container exists and answers with these credentials. */
  async probe(): Promise<void> {
    if (!(await this.container.exists())) {
      throw new Error(`container ${this.container.containerName} does not exist`);
    }
  }

  async stat(digest: Digest): Promise<BlobInfo | undefined> {
    const found = await this.properties(digest);
    return found && { size: found.size };
  }

  async read(digest: Digest, range?: ByteRange): Promise<Readable> {
    try {
      const got = await this.blob(digest).download(
        range?.start ?? 0,
        range ? range.end - range.start + 1 : undefined,
      );
      return got.readableStreamBody as Readable;
    } catch (error) {
      if (isAzureNotFound(error)) throw new BlobNotFoundError(digest);
      throw error;
    }
  }

  async sendTo(digest: Digest, range: ByteRange, sink: Writable): Promise<void> {
    await sendStream(await this.read(digest, range), sink);
  }

  ingest(digest: Digest, source: Readable, options: IngestOptions = {}): Promise<BlobInfo> {
    return ingestVerified(source, new AzureStagedObject(this.blob(digest)), {
      digest,
      ...options,
    });
  }

  async delete(digest: Digest): Promise<boolean> {
    return (await this.blob(digest).deleteIfExists()).succeeded;
  }

  async listBlobs(after: Digest | undefined, limit: number): Promise<StoredBlob[]> {
    // Blob names sort as digests do, but Azure lists only from the start of a prefix or
    // from a continuation marker. A page that ends on a whole service page keeps its
    // marker, so that a collector paging through every blob resumes where it stopped;
    // any other `after` lists from the start and skips what comes before it.
    const marker = after && this.listMarkers.get(after);
    const found: StoredBlob[] = [];
    const pages = this.container
      .listBlobsFlat({ prefix: this.layout.blobsPrefix })
      .byPage({ continuationToken: marker, maxPageSize: Math.min(5000, limit) });
    for await (const page of pages) {
      for (const item of page.segment.blobItems) {
        const digest = this.layout.digestOfKey(item.name);
        if (!digest || (after !== undefined && digest <= after)) continue;
        found.push({
          digest,
          size: item.properties.contentLength ?? 0,
          modifiedAt: item.properties.lastModified,
        });
      }
      if (found.length >= limit) {
        const last = found[limit - 1];
        if (found.length === limit && last && page.continuationToken) {
          this.rememberMarker(last.digest, page.continuationToken);
        }
        return found.slice(0, limit);
      }
    }
    return found;
  }

  async published(digest: Digest): Promise<StoredBlob | undefined> {
    const found = await this.properties(digest);
    return found && { digest, ...found };
  }

  async signedReadUrl(digest: Digest): Promise<string | undefined> {
    if (!this.redirectTtlSeconds) return undefined;
    // Read-only, this one blob, a few minutes; a minute of slack for clocks behind ours.
    const now = Date.now();
    return this.blob(digest).generateSasUrl({
      permissions: BlobSASPermissions.parse("r"),
      startsOn: new Date(now - 60_000),
      expiresOn: new Date(now + this.redirectTtlSeconds * 1000),
    });
  }

  private rememberMarker(digest: Digest, marker: string): void {
    this.listMarkers.set(digest, marker);
    // A few listings at a time at most (a collector's pass, a test): forget the oldest.
    for (const oldest of this.listMarkers.keys()) {
      if (this.listMarkers.size <= 16) break;
      this.listMarkers.delete(oldest);
    }
  }

  private blob(digest: Digest): BlockBlobClient {
    return this.container.getBlockBlobClient(this.layout.blobKey(digest));
  }

  private async properties(
    digest: Digest,
  ): Promise<{ size: number; modifiedAt: Date } | undefined> {
    try {
      const props = await this.blob(digest).getProperties();
      return { size: props.contentLength ?? 0, modifiedAt: props.lastModified ?? new Date(0) };
    } catch (error) {
      if (isAzureNotFound(error)) return undefined;
      throw error;
    }
  }
}

function serviceClient(options: AzureBlobStoreOptions): BlobServiceClient {
  if (options.connectionString)
    return BlobServiceClient.fromConnectionString(options.connectionString);
  if (!options.accountUrl) {
    throw new Error("the azure blob store needs a connection string or an account URL");
  }
  if (options.accountKey) {
    const name = options.accountName ?? new URL(options.accountUrl).hostname.split(".")[0] ?? "";
    return new BlobServiceClient(
      options.accountUrl,
      new StorageSharedKeyCredential(name, options.accountKey),
    );
  }
  // A SAS in the URL authorises every request.
  return new BlobServiceClient(options.accountUrl, new AnonymousCredential());
}
