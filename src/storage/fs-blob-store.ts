// The filesystem blob-store driver. Every write lands in a temporary file that is hashed
// while it streams, flushed to disk, verified, and only then renamed into place, so a
// crash at any moment leaves no partial blob visible.
//
//   <root>/
//     blobs/<algorithm>/<hex[0:2]>/<hex>   published blobs, immutable
//     uploads.db                            upload sessions: repository, start time
//     uploads/<id>                          bytes a session received so far (a valid prefix)
//     tmp/<random>                          ingests in progress; emptied at open
//     small-blobs.db                        blobs of at most 64 KiB (small-blob-table.ts),
//                                           unless they are rows of the metadata's file
//
// A blob ingested in one piece that ends within 64 KiB becomes a row of the table, any
// other blob a file; readers look in both. Upload sessions live in fs-upload-sessions.ts
// (a finished upload is renamed into blobs/ whatever its size: its file already exists);
// this file owns published content.
import { randomUUID } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, readdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { Readable, type Writable } from "node:stream";
import type { ByteRange } from "../oci/content-range.ts";
import { type Digest, digestAlgorithm, digestHex, digestOf } from "../oci/digest.ts";
import {
  type BlobInfo,
  BlobNotFoundError,
  type BlobStore,
  DigestMismatchError,
  type IngestOptions,
  SizeMismatchError,
  type StoredBlob,
} from "./blob-store.ts";
import { BufferPool } from "./buffer-pool.ts";
import { hasOwnedChunks } from "./chunk-release.ts";
import { FsUploadSessions } from "./fs-upload-sessions.ts";
import { HashedWriter, syncFile } from "./hashed-writer.ts";
import { sendStream } from "./send-stream.ts";
import { SessionBackedStore } from "./session-backed-store.ts";
import { SmallBlobTable, smallBlobBytes, smallBlobFile } from "./small-blob-table.ts";
import { readHead } from "./stream-head.ts";
import { UploadSessionTable, uploadSessionFile } from "./upload-session-table.ts";
import type { WalDatabase } from "./wal-database.ts";

export interface FsBlobStoreOptions {
  root: string;
  /** fsync files and folders before a write is acknowledged (default true). */
  durable?: boolean;
  /**
   * The embedded metadata store's SQLite file, to keep the small blobs in: a blob and its
   * link then share one WAL flush (small-blob-table.ts). Without it they get a file of
   * their own.
   */
  metadataDatabase?: WalDatabase | undefined;
}

/**
 * Read size of blob streams. 2 MiB chunks roughly double pull throughput over 512 KiB on
 * a 2-core machine; the stream allocates at most the bytes left in the requested range,
 * so callers pass the range even for whole blobs and small blobs stay cheap.
 */
const readChunkBytes = 2 * 1024 * 1024;
const sendPool = new BufferPool(1024 * 1024, 32);
const sendBuffersPerBlob = 3;

export class FsBlobStore extends SessionBackedStore implements BlobStore {
  private readonly root: string;
  private readonly durable: boolean;
  private readonly knownDirs = new Set<string>();
  protected readonly uploads: FsUploadSessions;
  private readonly small: SmallBlobTable;

  private constructor(options: FsBlobStoreOptions) {
    super();
    this.root = options.root;
    this.durable = options.durable ?? true;
    this.small = options.metadataDatabase
      ? SmallBlobTable.besideMetadata(options.metadataDatabase)
      : SmallBlobTable.inFile(join(this.root, smallBlobFile), this.durable);
    this.uploads = new FsUploadSessions({
      root: this.root,
      durable: this.durable,
      records: new UploadSessionTable(join(this.root, uploadSessionFile), this.durable),
      publish: (file, digest) => this.publish(file, digest),
      publishSmall: async (bytes, digest) => {
        await this.small.put(digest, bytes);
      },
    });
  }

  static async open(options: FsBlobStoreOptions): Promise<FsBlobStore> {
    await mkdir(options.root, { recursive: true });
    const store = new FsBlobStore(options);
    // A data folder from before the table moved into the metadata file.
    await store.small.adopt(join(store.root, smallBlobFile));
    await rm(join(store.root, "tmp"), { recursive: true, force: true });
    await mkdir(join(store.root, "tmp"), { recursive: true });
    await mkdir(join(store.root, "uploads"), { recursive: true });
    await mkdir(join(store.root, "blobs"), { recursive: true });
    return store;
  }

  async stat(digest: Digest): Promise<BlobInfo | undefined> {
    const size = this.small.size(digest);
    if (size !== undefined) return { size };
    try {
      const info = await stat(this.blobPath(digest));
      return { size: info.size };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async read(digest: Digest, range?: ByteRange): Promise<Readable> {
    const small = this.small.get(digest);
    if (small) {
      const bytes = range ? small.bytes.subarray(range.start, range.end + 1) : small.bytes;
      return Readable.from([bytes]);
    }
    const handle = await open(this.blobPath(digest), "r").catch((error: unknown) => {
      if (isNotFound(error)) throw new BlobNotFoundError(digest);
      throw error;
    });
    return createReadStream("", {
      fd: handle,
      start: range?.start,
      end: range?.end,
      highWaterMark: readChunkBytes,
    });
  }

  async sendTo(digest: Digest, range: ByteRange, sink: Writable): Promise<void> {
    const small = this.small.get(digest);
    if (small) {
      await sendStream(Readable.from([small.bytes.subarray(range.start, range.end + 1)]), sink);
      return;
    }
    const handle = await open(this.blobPath(digest), "r").catch((error: unknown) => {
      if (isNotFound(error)) throw new BlobNotFoundError(digest);
      throw error;
    });
    // Up to `sendBuffersPerBlob` reads in flight; a buffer is read into again only after
    // the sink's write callback says the socket has its bytes.
    let failure: Error | undefined;
    let lent = 0;
    let wake: (() => void) | undefined;
    const returned = (buffer: Buffer) => (error?: Error | null) => {
      lent -= 1;
      if (error) failure ??= error;
      else sendPool.give(buffer);
      wake?.();
    };
    const settle = () =>
      new Promise<void>((resolve) => {
        wake = resolve;
      });
    // A socket that closes may never call back for bytes it had not sent: stop waiting.
    let closed = false;
    const onClose = () => {
      closed = true;
      failure ??= new Error("the client went away");
      wake?.();
    };
    sink.once("close", onClose);
    try {
      let position = range.start;
      while (position <= range.end && !failure) {
        if (lent >= sendBuffersPerBlob && !closed) {
          await settle();
          continue;
        }
        const buffer = sendPool.take();
        const length = Math.min(buffer.length, range.end - position + 1);
        const { bytesRead } = await handle.read(buffer, 0, length, position);
        if (bytesRead === 0) throw new Error(`blob ${digest} is shorter than its recorded size`);
        position += bytesRead;
        lent += 1;
        sink.write(buffer.subarray(0, bytesRead), returned(buffer));
        if (sink.destroyed) failure ??= new Error("the client went away");
      }
      while (lent > 0 && !closed) await settle();
      if (failure) throw failure;
    } finally {
      sink.off("close", onClose);
      await handle.close();
    }
  }

  async ingest(digest: Digest, source: Readable, options: IngestOptions = {}): Promise<BlobInfo> {
    const { expectedSize } = options;
    let body: AsyncIterable<Buffer> = source;
    if (expectedSize === undefined || expectedSize <= smallBlobBytes) {
      const head = await readHead(source, smallBlobBytes, options.signal);
      if (head.ended) return this.ingestSmall(digest, head.bytes, expectedSize);
      body = head.whole;
    }
    const temp = join(this.root, "tmp", randomUUID());
    const writer = new HashedWriter(digestAlgorithm(digest));
    try {
      const size = await writer.write(body, temp, "w", 0, {
        sync: this.durable,
        flushAhead: this.durable,
        releaseChunks: hasOwnedChunks(source),
        signal: options.signal,
      });
      if (options.expectedSize !== undefined && size !== options.expectedSize) {
        throw new SizeMismatchError(options.expectedSize, size);
      }
      const actual = await writer.digest();
      if (actual !== digest) throw new DigestMismatchError(digest, actual);
      await this.publish(temp, digest);
      return { size };
    } finally {
      writer.close();
      await rm(temp, { force: true });
    }
  }

  async delete(digest: Digest): Promise<boolean> {
    // A blob may be in both places (ingested whole, and committed from an upload).
    const row = this.small.delete(digest);
    try {
      await rm(this.blobPath(digest));
      return true;
    } catch (error) {
      if (isNotFound(error)) return row;
      throw error;
    }
  }

  async published(digest: Digest): Promise<StoredBlob | undefined> {
    const small = this.small.get(digest);
    if (small) return { digest, size: small.bytes.length, modifiedAt: small.createdAt };
    try {
      const info = await stat(this.blobPath(digest));
      return { digest, size: info.size, modifiedAt: info.mtime };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async listBlobs(after: Digest | undefined, limit: number): Promise<StoredBlob[]> {
    // Each source's first `limit` after `after`, merged: the merge's first `limit` are the
    // store's. A digest in both is listed once.
    const merged = new Map<Digest, StoredBlob>();
    for (const blob of await this.listFiles(after, limit)) merged.set(blob.digest, blob);
    for (const blob of this.small.list(after, limit)) merged.set(blob.digest, blob);
    return [...merged.values()]
      .sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0))
      .slice(0, limit);
  }

  private async ingestSmall(
    digest: Digest,
    bytes: Buffer,
    expectedSize: number | undefined,
  ): Promise<BlobInfo> {
    if (expectedSize !== undefined && bytes.length !== expectedSize) {
      throw new SizeMismatchError(expectedSize, bytes.length);
    }
    const actual = digestOf(bytes, digestAlgorithm(digest));
    if (actual !== digest) throw new DigestMismatchError(digest, actual);
    await this.small.put(digest, bytes);
    return { size: bytes.length };
  }

  private async listFiles(after: Digest | undefined, limit: number): Promise<StoredBlob[]> {
    const found: StoredBlob[] = [];
    const blobsDir = join(this.root, "blobs");
    // blobs/<algorithm>/<hex[0:2]>/<hex>: walking the three levels in sorted order lists
    // the digests in lexical order, so a page can resume after the last digest it gave.
    for (const algorithm of await sortedEntries(blobsDir)) {
      const prefix = `${algorithm}:`;
      if (after !== undefined && prefix < after.slice(0, prefix.length)) continue;
      for (const shard of await sortedEntries(join(blobsDir, algorithm))) {
        if (after !== undefined && `${prefix}${shard}` < after.slice(0, prefix.length + 2)) {
          continue;
        }
        for (const hex of await sortedEntries(join(blobsDir, algorithm, shard))) {
          const digest = `${prefix}${hex}` as Digest;
          if (after !== undefined && digest <= after) continue;
          const info = await stat(join(blobsDir, algorithm, shard, hex)).catch((error: unknown) => {
            if (isNotFound(error)) return undefined;
            throw error;
          });
          if (!info) continue;
          found.push({ digest, size: info.size, modifiedAt: info.mtime });
          if (found.length >= limit) return found;
        }
      }
    }
    return found;
  }

  private async publish(file: string, digest: Digest): Promise<void> {
    const target = this.blobPath(digest);
    const dir = target.slice(0, target.lastIndexOf("/"));
    if (!this.knownDirs.has(dir)) {
      await mkdir(dir, { recursive: true });
      this.knownDirs.add(dir);
    }
    await rename(file, target);
    if (this.durable) await syncFile(dir);
  }

  private blobPath(digest: Digest): string {
    const hex = digestHex(digest);
    return join(this.root, "blobs", digestAlgorithm(digest), hex.slice(0, 2), hex);
  }
}

async function sortedEntries(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (error) {
    if (isNotFound(error)) return [];
    throw error;
  }
}

function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === "ENOENT";
}
