// The blob-store seam: content-addressed bytes and the uploads that become them. Every
// driver (filesystem now; object storage later) implements this interface and passes the
// shared suite in blob-store-suite.ts. Drivers throw the small error types below; the
// registry layer turns them into OCI errors.
import type { Readable, Writable } from "node:stream";
import type { ByteRange } from "../oci/content-range.ts";
import type { Digest } from "../oci/digest.ts";

export interface BlobInfo {
  size: number;
}

/** A published blob as a listing gives it. */
export interface StoredBlob {
  digest: Digest;
  size: number;
  /** When the bytes were published: the age of bytes no link ever named. */
  modifiedAt: Date;
}

export interface UploadInfo {
  id: string;
  repository: string;
  /** Bytes received so far. */
  size: number;
  startedAt: Date;
  /** Last time bytes were received (or the upload was created). */
  updatedAt: Date;
}

export interface IngestOptions {
  /** Rejects with SizeMismatchError when the stream's length differs. */
  expectedSize?: number;
  signal?: AbortSignal;
}

export interface BlobStore {
  /** Size of a published blob, or undefined when the store does not hold it. */
  stat(digest: Digest): Promise<BlobInfo | undefined>;
  /** The blob's bytes, or the inclusive `range` of them. Throws BlobNotFoundError. */
  read(digest: Digest, range?: ByteRange): Promise<Readable>;
  /**
   * Writes the blob's bytes (or the inclusive `range` of them) into `sink` without ending
   * it, respecting its backpressure; resolves once the sink has taken every byte.
   * Throws BlobNotFoundError, or the sink's error when it fails or closes early.
   */
  sendTo(digest: Digest, range: ByteRange, sink: Writable): Promise<void>;
  /**
   * Streams `source` into a temporary place while hashing it, verifies it against
   * `digest`, then publishes it atomically. Nothing is visible unless it verified.
   * Throws DigestMismatchError, SizeMismatchError, or the source's error.
   */
  ingest(digest: Digest, source: Readable, options?: IngestOptions): Promise<BlobInfo>;
  /**
   * Removes a published blob at once (a reader that already opened it finishes); false when
   * absent. The registry's collector calls it only under the blob's content lock.
   */
  delete(digest: Digest): Promise<boolean>;
  /**
   * Published blobs in digest order (lexical), after `after`, at most `limit`: a collector
   * pages through every blob without holding anything between pages.
   */
  listBlobs(after: Digest | undefined, limit: number): Promise<StoredBlob[]>;
  /** A published blob with its publish time, or undefined when absent. */
  published(digest: Digest): Promise<StoredBlob | undefined>;
  /**
   * A short-lived URL from which a client may GET the blob's bytes itself (an object
   * store's signed URL), or undefined to serve them here: drivers without one, or with
   * redirects off (the default), leave this out or resolve undefined.
   */
  signedReadUrl?(digest: Digest): Promise<string | undefined>;

  /** Starts an empty upload. `id` must match `uploadIdPattern`. */
  createUpload(id: string, repository: string): Promise<UploadInfo>;
  /** The upload's state, or undefined when unknown (never created, finished, expired). */
  getUpload(id: string): Promise<UploadInfo | undefined>;
  /**
   * Appends `source` at `offset`, which must equal the bytes received so far. Returns the
   * new size. Throws UploadNotFoundError, UploadOffsetError. The bytes survive a crash of
   * the process once this resolves; a power loss may shorten the upload (its size then
   * says so and the client resends from there). commitUpload makes the blob durable.
   *
   * The newest request on an upload wins: an append, commit or delete of the upload
   * abandons the appends to it still in flight or waiting (their sources are destroyed,
   * and they reject with UploadSupersededError, or UploadNotFoundError after a delete),
   * so that a client that stalls mid-body cannot hold the upload, its retry or its
   * expiry forever. What an abandoned append had written stays, a valid prefix.
   *
   * `onWritten`, when given, is told (in order) how many bytes of `source` are in the
   * upload's file so far, while the append goes on: readers of the received bytes
   * (readUpload) may read up to there.
   */
  appendUpload(
    id: string,
    offset: number,
    source: Readable,
    signal?: AbortSignal,
    onWritten?: (bytes: number) => void,
  ): Promise<number>;
  /**
   * Verifies the upload against `digest` and publishes it as that blob; the upload is
   * gone afterwards, whether it verified or not. Throws UploadNotFoundError,
   * DigestMismatchError.
   */
  commitUpload(id: string, digest: Digest): Promise<BlobInfo>;
  /**
   * The inclusive `range` of the bytes an upload has received, read while appends go on
   * (the stream ends early where the received bytes end). Throws UploadNotFoundError.
   */
  readUpload(id: string, range: ByteRange): Promise<Readable>;
  /** Discards an upload (abandoning an append in flight); no error when absent. */
  deleteUpload(id: string): Promise<void>;
  /** Every upload in progress, for expiry. */
  listUploads(): Promise<UploadInfo[]>;
}

/** Upload ids are generated by the registry; anything else never reaches a path. */
export const uploadIdPattern = /^[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}$/;

export class BlobNotFoundError extends Error {
  constructor(readonly digest: Digest) {
    super(`blob ${digest} not found`);
    this.name = "BlobNotFoundError";
  }
}

export class DigestMismatchError extends Error {
  constructor(
    readonly expected: Digest,
    readonly actual: Digest,
  ) {
    super(`content digest ${actual} does not match ${expected}`);
    this.name = "DigestMismatchError";
  }
}

export class SizeMismatchError extends Error {
  constructor(
    readonly expected: number,
    readonly actual: number,
  ) {
    super(`content length ${actual} does not match ${expected}`);
    this.name = "SizeMismatchError";
  }
}

export class UploadNotFoundError extends Error {
  constructor(readonly id: string) {
    super(`upload ${id} not found`);
    this.name = "UploadNotFoundError";
  }
}

/** An append abandoned because a newer request on the same upload took over. */
export class UploadSupersededError extends Error {
  constructor(readonly id: string) {
    super(`upload ${id}: a newer request took over from this append`);
    this.name = "UploadSupersededError";
  }
}

export class UploadOffsetError extends Error {
  constructor(
    readonly id: string,
    readonly expected: number,
    readonly actual: number,
  ) {
    super(`upload ${id} is at offset ${actual}, not ${expected}`);
    this.name = "UploadOffsetError";
  }
}
