// Blob uploads: monolithic (POST with digest), streamed or chunked (POST, PATCH..., PUT),
// status, cancel, and the expiry of abandoned sessions. Bytes go through the blob store,
// which verifies them; the link is written only once the blob is published.
import { randomUUID } from "node:crypto";
import type { Readable } from "node:stream";
import type { Digest } from "../oci/digest.ts";
import { OciError } from "../oci/oci-error.ts";
import {
  DigestMismatchError,
  SizeMismatchError,
  type UploadInfo,
  UploadNotFoundError,
  UploadOffsetError,
  UploadSupersededError,
} from "../storage/blob-store.ts";
import type { BlobOperations } from "./blob-operations.ts";
import { blobKey } from "./content-locks.ts";
import type { RegistryContext } from "./registry-context.ts";

export interface ChunkRange {
  start: number;
  end: number;
}

export class UploadOperations {
  constructor(
    private readonly ctx: RegistryContext,
    private readonly blobOps: BlobOperations,
  ) {}

  async start(repository: string): Promise<UploadInfo> {
    return this.ctx.blobs.createUpload(randomUUID(), repository);
  }

  /** A whole blob in one request (POST ?digest=). */
  async monolithic(
    repository: string,
    digest: Digest,
    body: Readable,
    contentLength: number | undefined,
    signal?: AbortSignal,
  ): Promise<{ size: number }> {
    // Held from the publish to the link: the collector must not take the bytes between.
    return this.ctx.locks.with([blobKey(digest)], async () => {
      const info = await translate(() =>
        this.ctx.blobs.ingest(digest, body, { expectedSize: contentLength, signal }),
      );
      await this.blobOps.link(repository, digest, info.size);
      return info;
    });
  }

  async status(repository: string, id: string): Promise<UploadInfo> {
    const upload = await this.ctx.blobs.getUpload(id);
    if (!upload || upload.repository !== repository) {
      throw new OciError("BLOB_UPLOAD_UNKNOWN", { uuid: id });
    }
    return upload;
  }

  /**
   * Appends a chunk. With a `range`, its start must be the bytes received so far (else
   * RANGE_INVALID naming the size); without one the body is appended as a stream.
   */
  async append(
    repository: string,
    id: string,
    body: Readable,
    range: ChunkRange | undefined,
    contentLength: number | undefined,
    signal?: AbortSignal,
  ): Promise<number> {
    const upload = await this.status(repository, id);
    const offset = range?.start ?? upload.size;
    if (range && contentLength !== undefined && range.end - range.start + 1 !== contentLength) {
      throw new OciError("RANGE_INVALID", {
        reason: "Content-Range does not match Content-Length",
        contentRange: `${range.start}-${range.end}`,
        contentLength,
      });
    }
    return translate(() => this.ctx.blobs.appendUpload(id, offset, body, signal));
  }

  /** Completes an upload (PUT ?digest=), with an optional last chunk in `body`. */
  async finish(
    repository: string,
    id: string,
    digest: Digest,
    body: Readable | undefined,
    range: ChunkRange | undefined,
    contentLength: number | undefined,
    signal?: AbortSignal,
  ): Promise<{ size: number }> {
    if (body) await this.append(repository, id, body, range, contentLength, signal);
    else await this.status(repository, id);
    return this.ctx.locks.with([blobKey(digest)], async () => {
      const info = await translate(() => this.ctx.blobs.commitUpload(id, digest));
      await this.blobOps.link(repository, digest, info.size);
      return info;
    });
  }

  async cancel(repository: string, id: string): Promise<void> {
    await this.status(repository, id);
    await this.ctx.blobs.deleteUpload(id);
  }

  /** Removes uploads that received nothing for `ttlMs`; returns how many. */
  async expire(ttlMs: number, now = Date.now()): Promise<number> {
    let removed = 0;
    for (const upload of await this.ctx.blobs.listUploads()) {
      if (now - upload.updatedAt.getTime() > ttlMs) {
        await this.ctx.blobs.deleteUpload(upload.id);
        removed += 1;
      }
    }
    return removed;
  }
}

/**
 * Maps the blob store's errors to the OCI errors a client understands. An out-of-order
 * chunk's RANGE_INVALID names the upload's size as `expectedStart` in its detail; the API
 * turns it into the upload's progress headers.
 */
async function translate<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof DigestMismatchError) {
      throw new OciError(
        "DIGEST_INVALID",
        { expected: error.expected, actual: error.actual },
        { cause: error },
      );
    }
    if (error instanceof SizeMismatchError) {
      throw new OciError(
        "SIZE_INVALID",
        { expected: error.expected, actual: error.actual },
        { cause: error },
      );
    }
    if (error instanceof UploadNotFoundError) {
      throw new OciError("BLOB_UPLOAD_UNKNOWN", { uuid: error.id }, { cause: error });
    }
    if (error instanceof UploadSupersededError) {
      // Whoever sent this append has been cut off; a newer request carries the upload on.
      throw new OciError(
        "BLOB_UPLOAD_INVALID",
        { reason: "a newer request on this upload took over", uuid: error.id },
        { cause: error },
      );
    }
    if (error instanceof UploadOffsetError) {
      throw new OciError(
        "RANGE_INVALID",
        { reason: "chunk out of order", expectedStart: error.actual, start: error.expected },
        { cause: error },
      );
    }
    throw error;
  }
}
