// Upload sessions of the filesystem blob store. An upload's bytes stay in its record while
// they fit in a small blob (each request's body ending within 64 KiB in all), so that a
// small blob pushed the way docker pushes (POST, PATCH, PUT) makes no file: its commit puts
// the bytes in the small-blob table. Past that they go to a file that is always a valid
// prefix of what the client sent, with the running hash kept in memory so that a commit
// need not read the file again; the commit verifies the digest and hands the file to the
// store to publish. The record and the file, not the memory, are the truth: the workers of
// one replica share the folder, and a client's next request on an upload may reach another.
//
//   <root>/uploads.db      the sessions' records: repository, start time, bytes while small
//   <root>/uploads/<id>    a session's bytes received so far, once they outgrew the record
//
// A record marked spilled without its file is the leftover of a crash (idle since it
// started, so that it expires); an entry of uploads/ without a record is a folder left by
// an older layout (`uploads/<id>/{info.json,data}`), listed idle since it last changed so
// that the expiry sweep removes it: such a session cannot be resumed, and its client
// starts again. A file beside a record not marked spilled is a move to the file that a
// crash cut short: the record's bytes count, and the file is written again, or listed idle
// for the expiry sweep once a commit removed the record.
import { createReadStream } from "node:fs";
import { open, readdir, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import type { ByteRange } from "../oci/content-range.ts";
import { type Digest, type DigestAlgorithm, digestAlgorithm, digestOf } from "../oci/digest.ts";
import {
  type BlobInfo,
  DigestMismatchError,
  type UploadInfo,
  UploadNotFoundError,
  UploadOffsetError,
  UploadSupersededError,
  uploadIdPattern,
} from "./blob-store.ts";
import { hasOwnedChunks } from "./chunk-release.ts";
import { HashedWriter, syncFile } from "./hashed-writer.ts";
import { KeyedLock } from "./keyed-lock.ts";
import { smallBlobBytes } from "./small-blob-table.ts";
import { readHead } from "./stream-head.ts";
import type { SessionRow, UploadSessionTable } from "./upload-session-table.ts";

export interface FsUploadSessionsOptions {
  root: string;
  durable: boolean;
  records: UploadSessionTable;
  /** Moves a verified file into place as the blob `digest` (the store's publish). */
  publish(file: string, digest: Digest): Promise<void>;
  /** Stores verified bytes as the small blob `digest` (the store's small-blob table). */
  publishSmall(bytes: Buffer, digest: Digest): Promise<void>;
}

interface UploadHashState {
  size: number;
  writer: HashedWriter;
}

/**
 * The upload half of FsBlobStore: BlobStore's upload methods (createUpload is create, and
 * so on; listUploads, which the expiry sweep reads, is list).
 */
export class FsUploadSessions {
  private readonly root: string;
  private readonly durable: boolean;
  private readonly records: UploadSessionTable;
  private readonly publish: FsUploadSessionsOptions["publish"];
  private readonly publishSmall: FsUploadSessionsOptions["publishSmall"];
  /** Running sha256 of uploads this process appended to, so commits need no re-read. */
  private readonly uploadHashes = new Map<string, UploadHashState>();
  private readonly uploadLocks = new KeyedLock();
  /**
   * The sources of the appends in flight or waiting for each upload's lock. A newer
   * request on the upload destroys them, so that one stalled client cannot hold the lock
   * (and everything queued behind it: its own retry, a cancel, the expiry sweep) forever.
   */
  private readonly appendSources = new Map<string, Set<Readable>>();

  constructor(options: FsUploadSessionsOptions) {
    this.root = options.root;
    this.durable = options.durable;
    this.records = options.records;
    this.publish = options.publish;
    this.publishSmall = options.publishSmall;
  }

  async create(id: string, repository: string): Promise<UploadInfo> {
    this.dataPath(id); // Refuses an id no file could be named after, before anything is stored.
    const startedAt = new Date();
    this.records.insert({ id, repository, startedAt });
    return { id, repository, size: 0, startedAt, updatedAt: startedAt };
  }

  async get(id: string): Promise<UploadInfo | undefined> {
    if (!uploadIdPattern.test(id)) return undefined;
    const record = this.records.get(id);
    return record && this.uploadOf(record);
  }

  /** The session a record stands for: the record's bytes, or once spilled its file's. */
  private async uploadOf(record: SessionRow): Promise<UploadInfo | undefined> {
    const { id, repository, startedAt } = record;
    if (!record.spilled) {
      return { id, repository, size: record.inline.length, startedAt, updatedAt: record.updatedAt };
    }
    try {
      const data = await stat(this.dataPath(id));
      if (!data.isFile()) return undefined;
      return { id, repository, size: data.size, startedAt, updatedAt: data.mtime };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  append(
    id: string,
    offset: number,
    source: Readable,
    signal?: AbortSignal,
    onWritten?: (bytes: number) => void,
  ): Promise<number> {
    this.abandonAppends(id, () => new UploadSupersededError(id));
    const sources = this.appendSources.get(id) ?? new Set<Readable>();
    sources.add(source);
    this.appendSources.set(id, sources);
    const release = () => {
      const current = this.appendSources.get(id);
      current?.delete(source);
      if (current?.size === 0) this.appendSources.delete(id);
    };
    return this.uploadLocks
      .run(id, () => this.appendLocked(id, offset, source, signal, onWritten))
      .finally(release);
  }

  private async appendLocked(
    id: string,
    offset: number,
    source: Readable,
    signal: AbortSignal | undefined,
    onWritten: ((bytes: number) => void) | undefined,
  ): Promise<number> {
    // Abandoned while it waited for the lock: a newer request has the upload now.
    if (source.destroyed) throw source.errored ?? new UploadSupersededError(id);
    // The record or the file says how long the upload is: another worker of the replica
    // may have appended to it since this process did (a running hash held here is then
    // stale, and uploadHashState rebuilds it).
    const record = this.records.get(id);
    const size = record && (await this.uploadOf(record))?.size;
    if (!record || size === undefined) throw new UploadNotFoundError(id);
    if (size !== offset) throw new UploadOffsetError(id, offset, size);
    const path = this.dataPath(id);
    let body: AsyncIterable<Buffer> = source;
    if (!record.spilled) {
      const head = await readHead(source, smallBlobBytes - size, signal);
      if (head.ended) {
        await this.appendToRecord(id, record.inline, head.bytes);
        onWritten?.(head.bytes.length);
        return size + head.bytes.length;
      }
      // The session outgrows its record: a file with the record's bytes takes over, and
      // this body goes on into it (a crash before the mark leaves the record's bytes the
      // truth, and the file is written again).
      await writeFile(path, record.inline);
      this.records.markSpilled(id);
      body = head.whole;
    }
    const state = await this.uploadHashState(id, path, size);
    // Until the append completes the running hash may be ahead of the file.
    this.uploadHashes.delete(id);
    // Chunks are not flushed one by one: a crashed process loses nothing the kernel
    // holds, a power loss at worst shortens the upload (its Range says so and the
    // client resends), and the commit flushes the whole blob before publishing it.
    let written: number;
    try {
      written = await state.writer.write(body, path, "r+", offset, {
        sync: false,
        flushAhead: this.durable,
        releaseChunks: hasOwnedChunks(source),
        signal,
        onWritten,
      });
    } catch (error) {
      state.writer.close();
      throw error;
    }
    this.uploadHashes.set(id, { size: offset + written, writer: state.writer });
    return offset + written;
  }

  /** Puts `added` after the `inline` bytes of a session's record. */
  private async appendToRecord(id: string, inline: Buffer, added: Buffer): Promise<void> {
    const bytes = Buffer.concat([inline, added]);
    if (this.records.setInline(id, inline.length, bytes, new Date())) return;
    // Another worker appended or committed meanwhile.
    const now = await this.get(id);
    if (!now) throw new UploadNotFoundError(id);
    throw new UploadOffsetError(id, inline.length, now.size);
  }

  commit(id: string, digest: Digest): Promise<BlobInfo> {
    this.abandonAppends(id, () => new UploadSupersededError(id));
    return this.uploadLocks.run(id, async () => {
      const record = this.records.get(id);
      const upload = record && (await this.uploadOf(record));
      if (!record || !upload) throw new UploadNotFoundError(id);
      const path = this.dataPath(id);
      try {
        if (!record.spilled) {
          const actual = digestOf(record.inline, digestAlgorithm(digest));
          if (actual !== digest) throw new DigestMismatchError(digest, actual);
          await this.publishSmall(record.inline, digest);
          return { size: upload.size };
        }
        const actual = await this.uploadDigest(id, path, upload.size, digestAlgorithm(digest));
        if (actual !== digest) throw new DigestMismatchError(digest, actual);
        if (this.durable) await syncFile(path);
        await this.publish(path, digest);
        return { size: upload.size };
      } finally {
        this.forgetHash(id);
        this.records.delete(id);
        // A session still in its record has no file, but for the leftover of a move to
        // the file that a crash cut short, which the expiry sweep removes once its record
        // is gone: looking for it cost each small commit a failed lstat (3.3% of the loop).
        if (record.spilled) await rm(path, { force: true });
      }
    });
  }

  /** The received bytes of `range` (while appends go on); throws UploadNotFoundError. */
  async read(id: string, range: ByteRange): Promise<Readable> {
    const record = this.records.get(id);
    // Bytes past the record's while it is not marked spilled are those of an append that
    // is moving the session to its file: they are read from there.
    if (record && !record.spilled && range.end < record.inline.length) {
      return Readable.from([record.inline.subarray(range.start, range.end + 1)]);
    }
    const handle = await open(this.dataPath(id), "r").catch((error: unknown) => {
      if (isNotFound(error)) throw new UploadNotFoundError(id);
      throw error;
    });
    return createReadStream("", {
      fd: handle,
      start: range.start,
      end: range.end,
      highWaterMark: 2 * 1024 * 1024,
    });
  }

  async delete(id: string): Promise<void> {
    if (!uploadIdPattern.test(id)) return;
    this.abandonAppends(id, () => new UploadNotFoundError(id));
    await this.uploadLocks.run(id, async () => {
      this.forgetHash(id);
      // The file first: once the session answers 404 its bytes are gone too (a crash in
      // between leaves a spilled record without its file, which the sweep removes).
      // recursive: a folder of the older layout goes the same way.
      await rm(this.dataPath(id), { recursive: true, force: true });
      this.records.delete(id);
    });
  }

  async list(): Promise<UploadInfo[]> {
    const uploads: UploadInfo[] = [];
    const recorded = new Set<string>();
    for (const record of this.records.all()) {
      recorded.add(record.id);
      const { id, repository, startedAt } = record;
      const upload = await this.uploadOf(record);
      // A spilled record without its file: idle since it started (see the top of this file).
      uploads.push(upload ?? { id, repository, startedAt, size: 0, updatedAt: startedAt });
    }
    for (const id of await readdir(join(this.root, "uploads"))) {
      if (recorded.has(id) || !uploadIdPattern.test(id)) continue;
      const since = await stat(this.dataPath(id)).then(
        (info) => info.mtime,
        () => undefined,
      );
      if (since) uploads.push({ id, repository: "", size: 0, startedAt: since, updatedAt: since });
    }
    return uploads;
  }

  /**
   * Destroys the sources of the appends to `id` in flight or waiting, with `reason`. The
   * error is made only when there is one: its stack trace made every request of a small
   * session-style push pay 3.3% of the event loop for an error nobody saw.
   */
  private abandonAppends(id: string, makeReason: () => Error): void {
    const sources = this.appendSources.get(id);
    if (!sources) return;
    this.appendSources.delete(id);
    const reason = makeReason();
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

  private dataPath(id: string): string {
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
