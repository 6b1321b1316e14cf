// Streams bytes into a file while hashing them, then flushes the file to disk: the one
// place where blob bytes are written.

import type { Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import { type Digest, type DigestAlgorithm, hasherDigest, newHasher } from "../oci/digest.ts";

const writeChunkBytes = 1024 * 1024;
/** Bytes gathered before one write; measured best on a 2-core machine between 2 and 8 MiB. */
const maxBatchBytes = 4 * 1024 * 1024;
const minBatchBytes = 256 * 1024;
/**
 * What all concurrent writers together may hold in batches: with many uploads at once
 * each batch shrinks, so memory stays bounded by this budget, not by the upload count.
 */
const batchBudgetBytes = 16 * 1024 * 1024;
let activeWriters = 0;

function batchLimit(): number {
  return Math.max(
    minBatchBytes,
    Math.min(maxBatchBytes, Math.floor(batchBudgetBytes / Math.max(1, activeWriters))),
  );
}
/** Stays well under the kernel's IOV_MAX (1024) for one writev. */
const maxBuffersPerWrite = 256;
/** A durable write is flushed to disk every this many bytes while it streams. */
const syncEveryBytes = 8 * 1024 * 1024;

export class HashedWriter {
  private readonly hash: Hash;

  constructor(readonly algorithm: DigestAlgorithm) {
    this.hash = newHasher(algorithm);
  }

  /**
   * Writes `source` into `path` from byte `start` (flags "w" to create, "r+" to extend),
   * optionally fsyncs it, and returns the number of bytes written.
   *
   * Chunks are gathered into batches of a few MiB and written with one `writev` while the
   * next batch fills: one write in flight at a time keeps memory bounded, and large
   * writes keep the thread pool from becoming the bottleneck (a write per 64 KiB socket
   * chunk halves the throughput).
   */
  async write(
    source: AsyncIterable<Buffer>,
    path: string,
    flags: "w" | "r+",
    start: number,
    options: {
      /** fsync before returning. */
      sync: boolean;
      /** Start writeback every few MiB while streaming (for durable stores). */
      flushAhead: boolean;
      signal?: AbortSignal | undefined;
    },
  ): Promise<number> {
    const handle = await open(path, flags);
    activeWriters += 1;
    let position = start;
    let batch: Buffer[] = [];
    let batchBytes = 0;
    let inflight: Promise<unknown> = Promise.resolve();
    let syncedTo = start;
    const flushes: Promise<unknown>[] = [];
    const flush = () => {
      const buffers = batch.length > maxBuffersPerWrite ? [Buffer.concat(batch)] : batch;
      const at = position;
      position += batchBytes;
      batch = [];
      batchBytes = 0;
      return handle.writev(buffers, at);
    };
    try {
      for await (const chunk of source) {
        options.signal?.throwIfAborted();
        this.hash.update(chunk);
        batch.push(chunk);
        batchBytes += chunk.length;
        if (batchBytes >= batchLimit()) {
          await inflight;
          const unsynced = position - syncedTo;
          inflight = flush();
          // Flushing to disk in the background as the data arrives overlaps the disk with
          // the network, so the final fsync (here or at commit) has little left to do.
          if (options.flushAhead && unsynced >= syncEveryBytes) {
            syncedTo = position;
            const written = inflight;
            flushes.push(written.then(() => handle.datasync()));
          }
        }
      }
      await inflight;
      if (batchBytes > 0) await flush();
      await Promise.all(flushes);
      if (options.sync) await handle.sync();
    } finally {
      await inflight.catch(() => undefined);
      await Promise.allSettled(flushes);
      activeWriters -= 1;
      await handle.close();
    }
    return position - start;
  }

  /** Feeds the first `size` bytes of an existing file into the hash. */
  async absorb(path: string, size: number): Promise<void> {
    if (size === 0) return;
    for await (const chunk of createReadStream(path, {
      start: 0,
      end: size - 1,
      highWaterMark: writeChunkBytes,
    })) {
      this.hash.update(chunk as Buffer);
    }
  }

  /** The digest of everything hashed so far; the writer can keep going afterwards. */
  digest(): Digest {
    return hasherDigest(this.algorithm, this.hash.copy());
  }
}

/** Flushes a file (or a folder's entries) to stable storage. */
export async function syncFile(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
