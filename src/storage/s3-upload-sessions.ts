// Upload sessions of the S3 blob store, kept in the bucket so that any node may append to
// or commit an upload another node created:
//
//   uploads/<id>/info.json              repository and start time; the upload exists iff it does
//   uploads/<id>/chunks/<offset>        received bytes, one object per chunk of at most 4 MiB
//
// The received size is the run of chunks that follow each other from offset 0 (chunks are
// written one at a time, so a crash leaves a valid prefix). A commit reads the chunks back
// in order through the hash and into a multipart upload at the blob's key, and publishes it
// only when the digest verified: no hash state has to live in any one process.

import { Readable } from "node:stream";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import type { ByteRange } from "../oci/content-range.ts";
import type { Digest } from "../oci/digest.ts";
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
} from "./object-key-layout.ts";
import { streamParts } from "./part-stream.ts";
import { deleteKeys, listObjects, listPrefixes } from "./s3-listing.ts";
import { isS3NotFound } from "./s3-staged-object.ts";
import { ingestVerified, type StagedObject } from "./staged-object.ts";
import { UploadAppendGuard } from "./upload-append-guard.ts";

/** Small enough that a few-MiB PATCH reports progress more than once. */
const chunkBytes = 4 * 1024 * 1024;
const chunkPool = new BufferPool(chunkBytes, 2);

export interface S3UploadSessionsOptions {
  client: S3Client;
  bucket: string;
  layout: ObjectKeyLayout;
  /** The blob `digest` being written at its final key (the store's staging). */
  stage(digest: Digest): StagedObject;
}

interface Chunk {
  key: string;
  offset: number;
  size: number;
  modifiedAt: Date;
}

interface UploadState {
  info: UploadInfo;
  chunks: Chunk[];
  /** Chunks past a gap (a write from an abandoned append on another node): never read. */
  strays: string[];
}

export class S3UploadSessions {
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly layout: ObjectKeyLayout;
  private readonly guard = new UploadAppendGuard();

  constructor(private readonly options: S3UploadSessionsOptions) {
    this.client = options.client;
    this.bucket = options.bucket;
    this.layout = options.layout;
  }

  async create(id: string, repository: string): Promise<UploadInfo> {
    if (!uploadIdPattern.test(id)) throw new UploadNotFoundError(id);
    // Chunks left by an interrupted delete of the same id (replication reuses ids) would
    // otherwise count as received bytes of the new upload.
    await this.remove(id);
    const startedAt = new Date();
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: this.layout.uploadInfoKey(id),
        Body: encodeUploadRecord(repository, startedAt),
        ContentType: "application/json",
      }),
    );
    return { id, repository, size: 0, startedAt, updatedAt: startedAt };
  }

  async get(id: string): Promise<UploadInfo | undefined> {
    if (!uploadIdPattern.test(id)) return undefined;
    return (await this.state(id))?.info;
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
      const state = await this.state(id);
      if (!state) throw new UploadNotFoundError(id);
      if (state.info.size !== offset) throw new UploadOffsetError(id, offset, state.info.size);
      // A stray chunk could sit exactly where one of ours ends and would then be read.
      await deleteKeys(this.client, this.bucket, state.strays);
      let written = 0;
      // One chunk in flight at a time (while the next fills): the chunks always form a
      // prefix of what the client sent.
      await streamParts(
        source,
        async (bytes) => {
          await this.client
            .send(
              new PutObjectCommand({
                Bucket: this.bucket,
                Key: this.layout.uploadChunkKey(id, offset + written),
                Body: bytes,
                ContentLength: bytes.length,
                // A chunk is never overwritten: where another node's append got to this
                // offset first (S3 and most compatible stores honour the condition), this
                // one fails instead of replacing bytes the upload already has.
                IfNoneMatch: "*",
              }),
              { abortSignal: signal },
            )
            .catch((error: unknown) => {
              const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata
                ?.httpStatusCode;
              if (status === 412 || status === 409) throw new UploadSupersededError(id);
              throw error;
            });
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
      const state = await this.state(id);
      if (!state) throw new UploadNotFoundError(id);
      try {
        const { size } = state.info;
        return await ingestVerified(
          this.received(state.chunks, 0, size - 1),
          this.options.stage(digest),
          { digest, expectedSize: size },
        );
      } finally {
        await this.remove(id);
      }
    });
  }

  async read(id: string, range: ByteRange): Promise<Readable> {
    const state = uploadIdPattern.test(id) ? await this.state(id) : undefined;
    if (!state) throw new UploadNotFoundError(id);
    const end = Math.min(range.end, state.info.size - 1);
    return Readable.from(this.received(state.chunks, range.start, end), { objectMode: false });
  }

  async delete(id: string): Promise<void> {
    if (!uploadIdPattern.test(id)) return;
    await this.guard.exclusive(id, new UploadNotFoundError(id), () => this.remove(id));
  }

  async list(): Promise<UploadInfo[]> {
    const uploads: UploadInfo[] = [];
    for await (const prefix of listPrefixes(this.client, this.bucket, this.layout.uploadsPrefix)) {
      const id = this.layout.uploadIdOfPrefix(prefix);
      if (!id) continue;
      const state = await this.state(id);
      if (state) {
        uploads.push(state.info);
        continue;
      }
      // Chunks without info.json: the rest of a delete that was interrupted. Listed as
      // idle since its newest chunk, so that the expiry sweep removes it in time.
      const { chunks } = await this.chunks(id);
      const newest = Math.max(0, ...chunks.map((c) => c.modifiedAt.getTime()));
      if (newest > 0) {
        const since = new Date(newest);
        uploads.push({ id, repository: "", size: 0, startedAt: since, updatedAt: since });
      }
    }
    return uploads;
  }

  private async state(id: string): Promise<UploadState | undefined> {
    let record: ReturnType<typeof decodeUploadRecord>;
    let recordModified: Date;
    try {
      const got = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.layout.uploadInfoKey(id) }),
      );
      if (!got.Body) throw new Error(`S3 returned no body for ${this.layout.uploadInfoKey(id)}`);
      record = decodeUploadRecord(Buffer.from(await got.Body.transformToByteArray()));
      recordModified = got.LastModified ?? new Date();
    } catch (error) {
      if (isS3NotFound(error)) return undefined;
      throw error;
    }
    const { chunks, strays } = await this.chunks(id);
    const size = chunks.reduce((sum, c) => sum + c.size, 0);
    const last = chunks.at(-1)?.modifiedAt;
    const startedAt = new Date(record.startedAt);
    return {
      info: {
        id,
        repository: record.repository,
        size,
        startedAt,
        updatedAt: last && last > recordModified ? last : recordModified,
      },
      chunks,
      strays,
    };
  }

  /** The upload's chunks that follow each other from offset 0, and the rest. */
  private async chunks(id: string): Promise<{ chunks: Chunk[]; strays: string[] }> {
    const chunks: Chunk[] = [];
    const strays: string[] = [];
    let next = 0;
    for await (const object of listObjects(
      this.client,
      this.bucket,
      this.layout.uploadChunksPrefix(id),
    )) {
      const offset = this.layout.chunkOffsetOfKey(id, object.key);
      if (offset === undefined) continue;
      if (offset === next && strays.length === 0 && object.size > 0) {
        chunks.push({ ...object, offset });
        next += object.size;
      } else {
        strays.push(object.key);
      }
    }
    return { chunks, strays };
  }

  /** The received bytes from `start` to `end` (inclusive), chunk by chunk. */
  private async *received(chunks: Chunk[], start: number, end: number): AsyncGenerator<Buffer> {
    for (const chunk of chunks) {
      const chunkEnd = chunk.offset + chunk.size - 1;
      if (chunkEnd < start || chunk.offset > end) continue;
      const from = Math.max(start, chunk.offset) - chunk.offset;
      const to = Math.min(end, chunkEnd) - chunk.offset;
      const got = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: chunk.key, Range: `bytes=${from}-${to}` }),
      );
      yield* got.Body as Readable;
    }
  }

  /** Removes the upload: info.json first, so that it ceases to exist at once. */
  private async remove(id: string): Promise<void> {
    await this.client.send(
      new DeleteObjectCommand({ Bucket: this.bucket, Key: this.layout.uploadInfoKey(id) }),
    );
    const keys: string[] = [];
    for await (const object of listObjects(
      this.client,
      this.bucket,
      this.layout.uploadPrefix(id),
    )) {
      keys.push(object.key);
    }
    await deleteKeys(this.client, this.bucket, keys);
  }
}
