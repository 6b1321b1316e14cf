// Blob operations of a repository: stat, read, delete and cross-repository mount. A blob
// is visible in a repository only through a link, and links are written only after the
// blob's bytes were verified and published.
import type { Writable } from "node:stream";
import { type ByteRange, type ReadRange, resolveReadRange } from "../oci/content-range.ts";
import type { Digest } from "../oci/digest.ts";
import { OciError } from "../oci/oci-error.ts";
import { BlobNotFoundError } from "../storage/blob-store.ts";
import { blobKey } from "./content-locks.ts";
import type { RegistryContext } from "./registry-context.ts";

export interface BlobRead {
  size: number;
  /** Present when a satisfiable range was asked for. */
  range?: ByteRange | undefined;
  /** Where the client may GET the bytes itself (a signed object-store URL), if anywhere. */
  redirect?: string | undefined;
  /**
   * Writes the bytes (the range, or the whole blob) into `sink` without ending it, calling
   * `begin` once before the first byte (see IncomingBlob).
   */
  sendTo(sink: Writable, begin: () => void): Promise<void>;
}

export class BlobOperations {
  constructor(private readonly ctx: RegistryContext) {}

  /**
   * The blob's size; throws BLOB_UNKNOWN when neither the repository nor the content
   * source can serve it. A blob only the source has is not fetched: its size is the
   * source's (a HEAD before a push must not move the blob).
   */
  async stat(repository: string, digest: Digest): Promise<{ size: number }> {
    const link = await this.servable(repository, digest);
    if (link) return link;
    const remote = await this.ctx.contentSource?.statBlob(repository, digest);
    if (remote) return remote;
    throw new OciError("BLOB_UNKNOWN", { digest });
  }

  /**
   * Reads the blob, or the `range` of it. A blob the repository lacks is read through the
   * content source: a whole blob streams while it arrives (the read then fails, rather
   * than ending, when the bytes fail verification), a range once the blob is stored.
   * Throws BLOB_UNKNOWN, or RANGE_INVALID with the size in its detail.
   */
  async read(repository: string, digest: Digest, requested?: ReadRange): Promise<BlobRead> {
    const link = await this.servable(repository, digest);
    const source = this.ctx.contentSource;
    if (!link && source) {
      if (requested === undefined) {
        const incoming = await source.openBlob(repository, digest);
        if (incoming)
          return { size: incoming.size, sendTo: (sink, begin) => incoming.sendTo(sink, begin) };
      } else if (await source.fetchBlob(repository, digest)) {
        const fetched = await this.ctx.metadata.getBlobLink(repository, digest);
        if (fetched) return this.readStored(digest, fetched.size, requested);
      }
    }
    if (!link) throw new OciError("BLOB_UNKNOWN", { digest });
    return this.readStored(digest, link.size, requested);
  }

  private async readStored(
    digest: Digest,
    size: number,
    requested: ReadRange | undefined,
  ): Promise<BlobRead> {
    const range = resolveReadRange(requested, size);
    if (!(await this.ctx.blobs.stat(digest))) {
      throw new OciError("BLOB_UNKNOWN", { digest, reason: "linked but not stored" });
    }
    const span = range ?? { start: 0, end: size - 1 };
    return {
      size,
      range,
      redirect: await this.ctx.blobs.signedReadUrl?.(digest),
      sendTo: async (sink, begin) => {
        begin();
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
    return this.ctx.locks.with([blobKey(digest)], async () => {
      const link = await this.servable(from, digest);
      if (!link) return false;
      if (!(await this.ctx.blobs.stat(digest))) return false;
      await this.link(repository, digest, link.size);
      return true;
    });
  }

  /**
   * What the repository may serve: a linked blob, or a blob one of its stored manifests
   * references. A manifest's blobs stay servable when their link registers say unlinked
   * (the collector expires links no manifest of its own region uses, and that unlink
   * replicates to regions where a manifest still arriving uses the blob); the collector
   * never takes bytes a stored manifest references.
   */
  private async servable(
    repository: string,
    digest: Digest,
  ): Promise<{ size: number } | undefined> {
    const link = await this.ctx.metadata.getBlobLink(repository, digest);
    if (link) return link;
    if (!(await this.ctx.metadata.servedByManifest(repository, digest))) return undefined;
    return this.ctx.blobs.stat(digest);
  }

  async link(repository: string, digest: Digest, size: number): Promise<void> {
    await this.ctx.metadata.linkBlob({ repository, digest, size, stamp: this.ctx.clock.next() });
  }
}
