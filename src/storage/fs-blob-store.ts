// The filesystem blob-store driver. Every write lands in a temporary file that is hashed
// while it streams, flushed to disk, verified, and only then renamed into place, so a
// crash at any moment leaves no partial blob visible.
//
//   <root>/
//     blobs/<algorithm>/<hex[0:2]>/<hex>   published blobs, immutable
//     uploads/<id>/info.json                the upload's repository and start time
//     uploads/<id>/data                     bytes received so far (a valid prefix)
//     tmp/<random>                          ingests in progress; emptied at open
import { randomUUID } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import type { ByteRange } from "../oci/content-range.ts";
import { type Digest, type DigestAlgorithm, digestAlgorithm, digestHex } from "../oci/digest.ts";
import {
  type BlobInfo,
  BlobNotFoundError,
  type BlobStore,
  DigestMismatchError,
  type IngestOptions,
  SizeMismatchError,
  type UploadInfo,
  UploadNotFoundError,
  UploadOffsetError,
  UploadSupersededError,
  uploadIdPattern,
} from "./blob-store.ts";
import { BufferPool } from "./buffer-pool.ts";
import { HashedWriter, syncFile } from "./hashed-writer.ts";
import { KeyedLock } from "./keyed-lock.ts";

export interface FsBlobStoreOptions {
  root: string;
  /** fsync files and folders before a write is acknowledged (default true). */
  durable?: boolean;
}

interface UploadHashState {
  size: number;
  writer: HashedWriter;
}

/**
 * Read size of blob streams. 2 MiB chunks roughly double pull throughput over 512 KiB on
 * a 2-core machine; the stream allocates at most the bytes left in the requested range,
 * so callers pass the range even for whole blobs and small blobs stay cheap.
 */
const readChunkBytes = 2 * 1024 * 1024;
const sendPool = new BufferPool(1024 * 1024, 32);
const sendBuffersPerBlob = 3;

export class FsBlobStore implements BlobStore {
  private readonly root: string;
  private readonly durable: boolean;
  private readonly knownDirs = new Set<string>();
  /** Running sha256 of uploads this process appended to, so commits need no re-read. */
  private readonly uploadHashes = new Map<string, UploadHashState>();
  private readonly uploadLocks = new KeyedLock();
  /**
   * The sources of the appends in flight or waiting for each upload's lock. A newer
   * request on the upload destroys them, so that one stalled client cannot hold the lock
   * (and everything queued behind it: its own retry, a cancel, the expiry sweep) forever.
   */
  private readonly appendSources = new Map<string, Set<Readable>>();

  private constructor(options: FsBlobStoreOptions) {
    this.root = options.root;
    this.durable = options.durable ?? true;
  }

  static async open(options: FsBlobStoreOptions): Promise<FsBlobStore> {
    const store = new FsBlobStore(options);
    await rm(join(store.root, "tmp"), { recursive: true, force: true });
    await mkdir(join(store.root, "tmp"), { recursive: true });
    await mkdir(join(store.root, "uploads"), { recursive: true });
    await mkdir(join(store.root, "blobs"), { recursive: true });
    return store;
  }

  async stat(digest: Digest): Promise<BlobInfo | undefined> {
    try {
      const info = await stat(this.blobPath(digest));
      return { size: info.size };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async read(digest: Digest, range?: ByteRange): Promise<Readable> {
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
    const temp = join(this.root, "tmp", randomUUID());
    const writer = new HashedWriter(digestAlgorithm(digest));
    try {
      const size = await writer.write(source, temp, "w", 0, {
        sync: this.durable,
        flushAhead: this.durable,
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
    try {
      await rm(this.blobPath(digest));
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }

  async createUpload(id: string, repository: string): Promise<UploadInfo> {
    const dir = this.uploadDir(id);
    await mkdir(dir, { recursive: true });
    const startedAt = new Date();
    await writeFile(join(dir, "data"), "");
    // info.json is written last and atomically: an upload without it does not exist.
    const temp = join(dir, "info.json.tmp");
    await writeFile(temp, JSON.stringify({ repository, startedAt: startedAt.toISOString() }));
    await rename(temp, join(dir, "info.json"));
    if (this.durable) await syncFile(dir);
    return { id, repository, size: 0, startedAt, updatedAt: startedAt };
  }

  async getUpload(id: string): Promise<UploadInfo | undefined> {
    if (!uploadIdPattern.test(id)) return undefined;
    const dir = this.uploadDir(id);
    try {
      const info = JSON.parse(await readFile(join(dir, "info.json"), "utf8")) as {
        repository: string;
        startedAt: string;
      };
      const data = await stat(join(dir, "data"));
      return {
        id,
        repository: info.repository,
        size: data.size,
        startedAt: new Date(info.startedAt),
        updatedAt: data.mtime,
      };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  appendUpload(
    id: string,
    offset: number,
    source: Readable,
    signal?: AbortSignal,
  ): Promise<number> {
    this.abandonAppends(id, new UploadSupersededError(id));
    const sources = this.appendSources.get(id) ?? new Set<Readable>();
    sources.add(source);
    this.appendSources.set(id, sources);
    const release = () => {
      const current = this.appendSources.get(id);
      current?.delete(source);
      if (current?.size === 0) this.appendSources.delete(id);
    };
    return this.uploadLocks
      .run(id, () => this.appendLocked(id, offset, source, signal))
      .finally(release);
  }

  private async appendLocked(
    id: string,
    offset: number,
    source: Readable,
    signal: AbortSignal | undefined,
  ): Promise<number> {
    // Abandoned while it waited for the lock: a newer request has the upload now.
    if (source.destroyed) throw source.errored ?? new UploadSupersededError(id);
    // A running hash held here means the upload exists and is that long (commit, delete
    // and failed appends drop it under this lock), so the common case reads no disk.
    const size = this.uploadHashes.get(id)?.size ?? (await this.getUpload(id))?.size;
    if (size === undefined) throw new UploadNotFoundError(id);
    if (size !== offset) throw new UploadOffsetError(id, offset, size);
    const path = join(this.uploadDir(id), "data");
    const state = await this.uploadHashState(id, path, size);
    // Until the append completes the running hash may be ahead of the file.
    this.uploadHashes.delete(id);
    // Chunks are not flushed one by one: a crashed process loses nothing the kernel
    // holds, a power loss at worst shortens the upload (its Range says so and the
    // client resends), and the commit flushes the whole blob before publishing it.
    let written: number;
    try {
      written = await state.writer.write(source, path, "r+", offset, {
        sync: false,
        flushAhead: this.durable,
        signal,
      });
    } catch (error) {
      state.writer.close();
      throw error;
    }
    this.uploadHashes.set(id, { size: offset + written, writer: state.writer });
    return offset + written;
  }

  commitUpload(id: string, digest: Digest): Promise<BlobInfo> {
    this.abandonAppends(id, new UploadSupersededError(id));
    return this.uploadLocks.run(id, async () => {
      const upload = await this.getUpload(id);
      if (!upload) throw new UploadNotFoundError(id);
      const path = join(this.uploadDir(id), "data");
      try {
        const actual = await this.uploadDigest(id, path, upload.size, digestAlgorithm(digest));
        if (actual !== digest) throw new DigestMismatchError(digest, actual);
        if (this.durable) await syncFile(path);
        await this.publish(path, digest);
        return { size: upload.size };
      } finally {
        this.forgetHash(id);
        await rm(this.uploadDir(id), { recursive: true, force: true });
      }
    });
  }

  async readUpload(id: string, range: ByteRange): Promise<Readable> {
    const handle = await open(join(this.uploadDir(id), "data"), "r").catch((error: unknown) => {
      if (isNotFound(error)) throw new UploadNotFoundError(id);
      throw error;
    });
    return createReadStream("", {
      fd: handle,
      start: range.start,
      end: range.end,
      highWaterMark: readChunkBytes,
    });
  }

  async deleteUpload(id: string): Promise<void> {
    if (!uploadIdPattern.test(id)) return;
    this.abandonAppends(id, new UploadNotFoundError(id));
    await this.uploadLocks.run(id, async () => {
      this.forgetHash(id);
      await rm(this.uploadDir(id), { recursive: true, force: true });
    });
  }

  async listUploads(): Promise<UploadInfo[]> {
    const ids = await readdir(join(this.root, "uploads"));
    const uploads: UploadInfo[] = [];
    for (const id of ids) {
      const upload = await this.getUpload(id);
      if (upload) {
        uploads.push(upload);
      } else if (uploadIdPattern.test(id)) {
        // No info.json: an upload being created right now (mkdir comes first), or a crash
        // in between. Idle since its folder last changed, so that it expires after the ttl
        // like any other, and a sweep never takes one still being created for abandoned.
        const since = await stat(this.uploadDir(id)).then(
          (info) => info.mtime,
          () => undefined,
        );
        if (since)
          uploads.push({ id, repository: "", size: 0, startedAt: since, updatedAt: since });
      }
    }
    return uploads;
  }

  /** Destroys the sources of the appends to `id` in flight or waiting, with `reason`. */
  private abandonAppends(id: string, reason: Error): void {
    const sources = this.appendSources.get(id);
    if (!sources) return;
    this.appendSources.delete(id);
    for (const source of sources) {
      // An append still waiting for the lock has nobody listening for the error yet; the
      // append finds it on the destroyed source when its turn comes.
      source.on("error", () => undefined);
      source.destroy(reason);
    }
  }

  private async uploadHashState(id: string, path: string, size: number): Promise<UploadHashState> {
    const cached = this.uploadHashes.get(id);
    if (cached && cached.size === size) return cached;
    this.forgetHash(id);
    // After a restart (or an interrupted append) the hash is rebuilt from the file itself.
    return { size, writer: await absorbed("sha256", path, size) };
  }

  /** Drops the running hash of an upload, if this process holds one. */
  private forgetHash(id: string): void {
    this.uploadHashes.get(id)?.writer.close();
    this.uploadHashes.delete(id);
  }

  private async uploadDigest(
    id: string,
    path: string,
    size: number,
    algorithm: DigestAlgorithm,
  ): Promise<Digest> {
    const cached = this.uploadHashes.get(id);
    if (cached && cached.size === size && cached.writer.algorithm === algorithm) {
      return await cached.writer.digest();
    }
    const writer = await absorbed(algorithm, path, size);
    try {
      return await writer.digest();
    } finally {
      writer.close();
    }
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

  private uploadDir(id: string): string {
    if (!uploadIdPattern.test(id)) throw new UploadNotFoundError(id);
    return join(this.root, "uploads", id);
  }
}

/** A writer whose hash has taken in the first `size` bytes of the file at `path`. */
async function absorbed(
  algorithm: DigestAlgorithm,
  path: string,
  size: number,
): Promise<HashedWriter> {
  const writer = new HashedWriter(algorithm);
  try {
    await writer.absorb(path, size);
    return writer;
  } catch (error) {
    writer.close();
    throw error;
  }
}

function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === "ENOENT";
}
