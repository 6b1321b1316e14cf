// Upload sessions of the Azure blob store, kept in the container so that any node may
// append to or commit an upload another node created:
//
//   uploads/<id>/info.json   repository and start time; the upload exists iff it does
//   uploads/<id>/data        a block blob of the bytes received so far
//
// An append stages each chunk (at most 4 MiB) as a block whose id encodes its offset and
// commits the grown block list at once, conditional on the blob's ETag: the committed
// blob is always a prefix of what the client sent, readable at once, and an append from
// another node that got there first fails instead of interleaving. A commit reads the
// blob back through the hash into blocks staged at the blob's final name, committed only
// once the digest verified: no hash state has to live in any one process.
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import type { BlockBlobClient, ContainerClient } from "@azure/storage-blob";
import type { ByteRange } from "../oci/content-range.ts";
import type { Digest } from "../oci/digest.ts";
import { isAzureNotFound } from "./azure-staged-object.ts";
import {
  type BlobInfo,
  type UploadInfo,
  UploadNotFoundError,
  UploadOffsetError,
  UploadSupersededError,
  uploadIdPattern,
} from "./blob-store.ts";
import { BufferPool } from "./buffer-pool.ts";
import {
  decodeUploadRecord,
  encodeUploadRecord,
  type ObjectKeyLayout,
  type UploadRecord,
} from "./object-key-layout.ts";
import { streamParts } from "./part-stream.ts";
import { ingestVerified, type StagedObject } from "./staged-object.ts";
import { UploadAppendGuard } from "./upload-append-guard.ts";

/** Small enough that a few-MiB PATCH reports progress more than once. */
const chunkBytes = 4 * 1024 * 1024;
const chunkPool = new BufferPool(chunkBytes, 2);

export interface AzureUploadSessionsOptions {
  container: ContainerClient;
  layout: ObjectKeyLayout;
  /** The blob `digest` being written at its final name (the store's staging). */
  stage(digest: Digest): StagedObject;
}

interface Received {
  size: number;
  modifiedAt: Date | undefined;
}

export class AzureUploadSessions {
  private readonly container: ContainerClient;
  private readonly layout: ObjectKeyLayout;
  private readonly guard = new UploadAppendGuard();

  constructor(private readonly options: AzureUploadSessionsOptions) {
    this.container = options.container;
    this.layout = options.layout;
  }

  async create(id: string, repository: string): Promise<UploadInfo> {
    if (!uploadIdPattern.test(id)) throw new UploadNotFoundError(id);
    // A data blob left by an interrupted delete of the same id (replication reuses ids)
    // would otherwise count as received bytes of the new upload.
    await this.remove(id);
    const startedAt = new Date();
    const record = encodeUploadRecord(repository, startedAt);
    await this.info(id).upload(record, record.length, {
      blobHTTPHeaders: { blobContentType: "application/json" },
    });
    return { id, repository, size: 0, startedAt, updatedAt: startedAt };
  }

  async get(id: string): Promise<UploadInfo | undefined> {
    if (!uploadIdPattern.test(id)) return undefined;
    const record = await this.record(id);
    if (!record) return undefined;
    const received = await this.received(id);
    return {
      id,
      repository: record.repository,
      size: received.size,
      startedAt: new Date(record.startedAt),
      updatedAt: received.modifiedAt ?? record.modifiedAt,
    };
  }

  append(
    id: string,
    offset: number,
    source: Readable,
    signal?: AbortSignal,
    onWritten?: (bytes: number) => void,
  ): Promise<number> {
    if (!uploadIdPattern.test(id)) return Promise.reject(new UploadNotFoundError(id));
    return this.guard.append(id, source, async () => {
      if (!(await this.record(id))) throw new UploadNotFoundError(id);
      const data = this.data(id);
      const committed = await data.getBlockList("committed").catch((error: unknown) => {
        if (isAzureNotFound(error)) return undefined;
        throw error;
      });
      const ids = (committed?.committedBlocks ?? []).map((block) => block.name);
      const size = (committed?.committedBlocks ?? []).reduce((sum, b) => sum + b.size, 0);
      if (size !== offset) throw new UploadOffsetError(id, offset, size);
      let etag = committed?.etag;
      // Block ids of one blob must all have the same length: 16 digits and 8 hex.
      const token = randomBytes(4).toString("hex");
      let written = 0;
      // One block at a time: committing a block list discards the blocks staged but not
      // in it, so a block is staged only once the one before it is committed.
      await streamParts(
        source,
        async (bytes) => {
          const position = String(offset + written).padStart(16, "0");
          const blockId = Buffer.from(`${position}${token}`).toString("base64");
          await data.stageBlock(blockId, bytes, bytes.length, { abortSignal: signal });
          ids.push(blockId);
          const done = await data
            .commitBlockList(ids, {
              conditions: etag ? { ifMatch: etag } : { ifNoneMatch: "*" },
              abortSignal: signal,
            })
            .catch((error: unknown) => {
              // Another node appended to this upload meanwhile: it has the upload now.
              const status = (error as { statusCode?: number }).statusCode;
              if (status === 412 || status === 409) throw new UploadSupersededError(id);
              throw error;
            });
          etag = done.etag;
          written += bytes.length;
          onWritten?.(written);
        },
        { pool: chunkPool, maxInflight: 1, signal },
      );
      return offset + written;
    });
  }

  commit(id: string, digest: Digest): Promise<BlobInfo> {
    if (!uploadIdPattern.test(id)) return Promise.reject(new UploadNotFoundError(id));
    return this.guard.exclusive(id, new UploadSupersededError(id), async () => {
      if (!(await this.record(id))) throw new UploadNotFoundError(id);
      try {
        const { size } = await this.received(id);
        return await ingestVerified(
          await this.download(id, 0, size - 1),
          this.options.stage(digest),
          { digest, expectedSize: size },
        );
      } finally {
        await this.remove(id);
      }
    });
  }

  async read(id: string, range: ByteRange): Promise<Readable> {
    if (!uploadIdPattern.test(id) || !(await this.record(id))) throw new UploadNotFoundError(id);
    const { size } = await this.received(id);
    return this.download(id, range.start, Math.min(range.end, size - 1));
  }

  async delete(id: string): Promise<void> {
    if (!uploadIdPattern.test(id)) return;
    await this.guard.exclusive(id, new UploadNotFoundError(id), () => this.remove(id));
  }

  async list(): Promise<UploadInfo[]> {
    const uploads: UploadInfo[] = [];
    const listing = this.container.listBlobsByHierarchy("/", {
      prefix: this.layout.uploadsPrefix,
    });
    for await (const item of listing) {
      if (item.kind !== "prefix") continue;
      const id = this.layout.uploadIdOfPrefix(item.name);
      if (!id) continue;
      const upload = await this.get(id);
      if (upload) {
        uploads.push(upload);
        continue;
      }
      // A data blob without info.json: the rest of a delete that was interrupted. Listed
      // as idle since it last changed, so that the expiry sweep removes it in time.
      const { modifiedAt } = await this.received(id);
      if (modifiedAt) {
        uploads.push({ id, repository: "", size: 0, startedAt: modifiedAt, updatedAt: modifiedAt });
      }
    }
    return uploads;
  }

  private async record(id: string): Promise<(UploadRecord & { modifiedAt: Date }) | undefined> {
    try {
      const got = await this.info(id).download(0);
      const body = got.readableStreamBody;
      const chunks: Buffer[] = [];
      if (body) for await (const chunk of body) chunks.push(chunk as Buffer);
      return {
        ...decodeUploadRecord(Buffer.concat(chunks)),
        modifiedAt: got.lastModified ?? new Date(),
      };
    } catch (error) {
      if (isAzureNotFound(error)) return undefined;
      throw error;
    }
  }

  private async received(id: string): Promise<Received> {
    try {
      const props = await this.data(id).getProperties();
      return { size: props.contentLength ?? 0, modifiedAt: props.lastModified };
    } catch (error) {
      if (isAzureNotFound(error)) return { size: 0, modifiedAt: undefined };
      throw error;
    }
  }

  /** The received bytes from `start` to `end` (inclusive; none when end < start). */
  private async download(id: string, start: number, end: number): Promise<Readable> {
    if (end < start) return Readable.from([]);
    const got = await this.data(id).download(start, end - start + 1);
    return got.readableStreamBody as Readable;
  }

  /** Removes the upload: info.json first, so that it ceases to exist at once. */
  private async remove(id: string): Promise<void> {
    await this.info(id).deleteIfExists();
    await this.data(id).deleteIfExists();
  }

  private info(id: string): BlockBlobClient {
    return this.container.getBlockBlobClient(this.layout.uploadInfoKey(id));
  }

  private data(id: string): BlockBlobClient {
    return this.container.getBlockBlobClient(this.layout.uploadDataKey(id));
  }
}
