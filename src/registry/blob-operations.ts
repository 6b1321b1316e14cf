// Blob operations of a repository: stat, read, delete and cross-repository mount. A blob
// is visible in a repository only through a link, and links are written only after the
// blob's bytes were verified and published.
import type { Writable } from "node:stream";
import type { ByteRange } from "../oci/content-range.ts";
import { resolveReadRange } from "../oci/content-range.ts";
import type { Digest } from "../oci/digest.ts";
import { OciError } from "../oci/oci-error.ts";
import { BlobNotFoundError } from "../storage/blob-store.ts";
import type { RegistryContext } from "./registry-context.ts";

export interface BlobRead {
  size: number;
  /** Present when a satisfiable `Range` was asked for. */
  range?: ByteRange | undefined;
  /** Writes the bytes (the range, or the whole blob) into `sink` without ending it. */
  sendTo(sink: Writable): Promise<void>;
}

export class BlobOperations {
  constructor(private readonly ctx: RegistryContext) {}

  /** The blob's size; throws BLOB_UNKNOWN when the repository cannot serve it. */
  async stat(repository: string, digest: Digest): Promise<{ size: number }> {
    const link = await this.ctx.metadata.getBlobLink(repository, digest);
    if (link) return link;
    if (await this.ctx.contentSource?.fetchBlob(repository, digest)) {
      const fetched = await this.ctx.metadata.getBlobLink(repository, digest);
      if (fetched) return fetched;
    }
    throw new OciError("BLOB_UNKNOWN", { digest });
  }

  async read(repository: string, digest: Digest, rangeHeader?: string): Promise<BlobRead> {
    const { size } = await this.stat(repository, digest);
    const range = resolveReadRange(rangeHeader, size);
    if (!(await this.ctx.blobs.stat(digest))) {
      throw new OciError("BLOB_UNKNOWN", { digest, reason: "linked but not stored" });
    }
    const span = range ?? { start: 0, end: size - 1 };
    return {
      size,
      range,
      sendTo: async (sink) => {
        if (span.end < span.start) return;
        try {
          await this.ctx.blobs.sendTo(digest, span, sink);
        } catch (error) {
          if (error instanceof BlobNotFoundError) {
            throw new OciError(
              "BLOB_UNKNOWN",
              { digest, reason: "linked but not stored" },
              { cause: error },
            );
          }
          throw error;
        }
      },
    };
  }

  /** Unlinks the blob from the repository; the bytes stay for other repositories. */
  async delete(repository: string, digest: Digest): Promise<void> {
    // Only a link that exists here is deleted: a delete of an unknown digest writes nothing.
    if (!(await this.ctx.metadata.getBlobLink(repository, digest))) {
      throw new OciError("BLOB_UNKNOWN", { digest });
    }
    const removed = await this.ctx.metadata.unlinkBlob(repository, digest, this.ctx.clock.next());
    if (!removed) throw new OciError("BLOB_UNKNOWN", { digest });
  }

  /**
   * Links `digest` from repository `from` into `repository` without copying. Resolves
   * false when `from` cannot serve the blob (the caller then starts a normal upload).
   */
  async mount(repository: string, digest: Digest, from: string): Promise<boolean> {
    const link = await this.ctx.metadata.getBlobLink(from, digest);
    if (!link) return false;
    if (!(await this.ctx.blobs.stat(digest))) return false;
    await this.link(repository, digest, link.size);
    return true;
  }

  async link(repository: string, digest: Digest, size: number): Promise<void> {
    await this.ctx.metadata.linkBlob({ repository, digest, size, stamp: this.ctx.clock.next() });
  }
}
