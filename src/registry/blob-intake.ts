// The one way blob bytes from elsewhere (other replicas) enter this replica: a resumable
// session per digest, whose bytes are verified against the digest before the blob is
// published. Replication streams into it and never touches the blob store itself; a link
// to the published blob is then written through the remote-apply path.
import { createHash } from "node:crypto";
import { Readable, type Writable } from "node:stream";
import type { ByteRange } from "../oci/content-range.ts";
import type { Digest } from "../oci/digest.ts";
import type { BlobInfo, BlobStore } from "../storage/blob-store.ts";

export { DigestMismatchError, UploadNotFoundError } from "../storage/blob-store.ts";

/** Upload sessions of incoming blobs belong to this pseudo-repository (never a valid name). */
const intakeRepository = "_replication";

export class BlobIntake {
  constructor(private readonly blobs: BlobStore) {}

  /** The published blob's size, or undefined when this replica does not hold it. */
  stored(digest: Digest): Promise<BlobInfo | undefined> {
    return this.blobs.stat(digest);
  }

  /** Stores a blob received whole (a small one sent inline); throws DigestMismatchError. */
  async ingest(digest: Digest, bytes: Buffer): Promise<void> {
    await this.blobs.ingest(digest, Readable.from([bytes]));
  }

  /** The bytes received so far for `digest` (0 for a new session, which it opens). */
  async resume(digest: Digest): Promise<number> {
    const id = sessionIdFor(digest);
    const upload =
      (await this.blobs.getUpload(id)) ?? (await this.blobs.createUpload(id, intakeRepository));
    return upload.size;
  }

  /** Drops what was received for `digest` and opens an empty session. */
  async restart(digest: Digest): Promise<void> {
    const id = sessionIdFor(digest);
    await this.blobs.deleteUpload(id);
    await this.blobs.createUpload(id, intakeRepository);
  }

  /**
   * Appends `source` at `offset`; resolves the new size. `onWritten` is told how many of its
   * bytes are in the session's file as they land. Throws the blob store's errors.
   */
  append(
    digest: Digest,
    offset: number,
    source: Readable,
    options: { signal?: AbortSignal; onWritten?: (bytes: number) => void } = {},
  ): Promise<number> {
    return this.blobs.appendUpload(
      sessionIdFor(digest),
      offset,
      source,
      options.signal,
      options.onWritten,
    );
  }

  /** The received bytes of `range`. Throws UploadNotFoundError once the session is gone. */
  readReceived(digest: Digest, range: ByteRange): Promise<Readable> {
    return this.blobs.readUpload(sessionIdFor(digest), range);
  }

  /** Writes the published blob's `range` into `sink`, without ending it. */
  sendStored(digest: Digest, range: ByteRange, sink: Writable): Promise<void> {
    return this.blobs.sendTo(digest, range, sink);
  }

  /**
   * Verifies the received bytes against `digest` and publishes the blob. Throws
   * DigestMismatchError (the session is gone then: the next attempt starts from zero).
   */
  async publish(digest: Digest): Promise<void> {
    await this.blobs.commitUpload(sessionIdFor(digest), digest);
  }
}

/** A stable session id per digest, so that a restart resumes the same partial blob. */
export function sessionIdFor(digest: Digest): string {
  const hex = createHash("sha256").update(`replication:${digest}`).digest("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}
