// Streams bytes into a file while hashing them, then flushes the file to disk: the one
// place where blob bytes are written.
//
//   socket chunks --copy--> slot (from a pool) --writev, in order--> file
//                                                                      |
//   running hash (hashing thread) <--reads the slot's range back-------'
//
// The event loop only receives, copies and issues writes. The socket's chunks become
// garbage at once instead of living until their batch is written (a request body's are
// freed as soon as they are copied: chunk-release.ts), the slots are reused, and the old
// generation is collected at a bounded growth (old-space-pacer.ts), so memory stays flat
// whatever the blob size or the upload count. The hash reads what the file holds, so the
// digest that is checked is the digest of the bytes that get published.

import { createHash, type Hash } from "node:crypto";
import { open } from "node:fs/promises";
import type { Digest, DigestAlgorithm } from "../oci/digest.ts";
import { BufferPool } from "./buffer-pool.ts";
import { releaseChunk } from "./chunk-release.ts";
import { RemoteHash } from "./hash-thread.ts";
import { uploadPacer } from "./old-space-pacer.ts";
import { OrderedFileWrites } from "./ordered-file-writes.ts";

/**
 * Bytes per slot. Every upload in flight holds at least two slots (one filling, one being
 * written), so the slot size sets the memory of many concurrent uploads: peak RSS of the
 * replica during 16 concurrent 256 MiB uploads (bench `rss`, 3 runs each on 2026-12-01,
 * idle 66-68 MiB) was 137-145 MiB with 1 MiB slots, 110-116 with 256 KiB, 100-114 with
 * 128 KiB. Slots queued behind a write in flight go out together (ordered-file-writes.ts),
 * so small slots do not make a lone upload's writes small.
 */
const slotBytes = 128 * 1024;
/**
 * Slots all concurrent writers together may have in flight: with many uploads at once
 * each gets fewer (one at least), so memory stays bounded by this budget plus one
 * filling and one in-flight slot per writer, not by the blob size. 32 x 128 KiB: a
 * budget of 64 measured 109-118 MiB in the runs above (each writer kept more slots).
 */
const budgetSlots = 32;
/** Slots one writer may have in flight: enough to keep the disk and the hash busy. */
const maxInflightSlots = 16;
const slots = new BufferPool(slotBytes, budgetSlots);
/**
 * Bytes per request to the hashing thread. The thread reads the bytes back from the file,
 * not from the slot, so its requests need not follow the slots: 1 MiB keeps its round
 * trips as few as they were with 1 MiB slots.
 */
const hashRequestBytes = 1024 * 1024;
let activeWriters = 0;

function inflightLimit(): number {
  return Math.max(
    1,
    Math.min(maxInflightSlots, Math.floor(budgetSlots / Math.max(1, activeWriters)) - 1),
  );
}

/** A durable write is flushed to disk every this many bytes while it streams. */
const syncEveryBytes = 8 * 1024 * 1024;

export class HashedWriter {
  /**
   * Where the hash runs, chosen at the first write: a stream that ends within its first
   * slot (configs, small layers) is hashed here from the slot, which costs microseconds,
   * where the thread would cost round trips; anything larger goes to the thread.
   */
  private mode: "local" | "remote" | undefined;
  private remote: RemoteHash | undefined;
  private local: Hash | undefined;
  /** Settles once every range written so far is hashed (rejects if one could not be). */
  private hashed: Promise<void> = Promise.resolve();

  constructor(readonly algorithm: DigestAlgorithm) {}

  /**
   * Writes `source` into `path` from byte `start` (flags "w" to create, "r+" to extend),
   * hashes it, optionally fsyncs it, and returns the number of bytes written. After a
   * failure the hash may not match the file: discard the writer.
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
      /**
       * Free each chunk of `source` once copied (releaseChunk): only for chunks nobody
       * else holds or reads again, as a request body's (hasOwnedChunks).
       */
      releaseChunks?: boolean | undefined;
      signal?: AbortSignal | undefined;
      /** Told, in order, how many bytes are in the file so far as each write completes. */
      onWritten?: ((bytes: number) => void) | undefined;
    },
  ): Promise<number> {
    const handle = await open(path, flags);
    activeWriters += 1;
    let position = start;
    let slot: Buffer | undefined;
    let filled = 0;
    /** Slots handed to the disk and the hash, oldest first. */
    const inflight: Promise<void>[] = [];
    const onWritten = options.onWritten;
    const writes = new OrderedFileWrites(
      handle,
      start,
      onWritten && ((to: number) => onWritten(to - start)),
    );
    const flushes: Promise<unknown>[] = [];
    let syncedTo = start;
    /** Where the next hash request starts: bytes before it are hashed or requested. */
    let hashedTo = start;
    /**
     * Settles when the last slot submitted is written and back in the pool. Every hash
     * request is chained by these same steps onto its slot's write, and the writes settle
     * in stream order (several at once when they went out in one writev), so the requests
     * reach the thread in stream order.
     */
    let lastReleased: Promise<void> = Promise.resolve();
    const requestHash = (after: Promise<void>, to: number): Promise<void> => {
      const from = hashedTo;
      hashedTo = to;
      return after.then(() => this.remoteHash().absorb(path, to, from));
    };
    const submit = (last: boolean) => {
      if (!slot || filled === 0) return;
      const buffer = slot;
      const at = position;
      const length = filled;
      this.mode ??= last && at === 0 ? "local" : "remote";
      if (this.mode === "local") this.localHash().update(buffer.subarray(0, length));
      position += length;
      uploadPacer.written(length);
      slot = undefined;
      filled = 0;
      const written = writes.write(buffer.subarray(0, length));
      const released = written.finally(() => slots.give(buffer));
      lastReleased = released;
      // One hash request per hashRequestBytes written, and one for the tail.
      const done =
        this.mode === "remote" && (last || position - hashedTo >= hashRequestBytes)
          ? requestHash(released, position)
          : released;
      done.catch(() => undefined);
      inflight.push(done);
      // Flushing to disk in the background as the data arrives overlaps the disk with the
      // network, so the final fsync (here or at commit) has little left to do.
      if (options.flushAhead && position - syncedTo >= syncEveryBytes) {
        syncedTo = position;
        const flush = written.then(() => handle.datasync());
        flush.catch(() => undefined);
        flushes.push(flush);
      }
    };
    try {
      for await (const chunk of source) {
        options.signal?.throwIfAborted();
        let offset = 0;
        while (offset < chunk.length) {
          if (!slot) {
            while (inflight.length >= inflightLimit()) await inflight.shift();
            slot = slots.take();
          }
          const copied = chunk.copy(slot, filled, offset);
          filled += copied;
          offset += copied;
          if (filled === slot.length) submit(false);
        }
        if (options.releaseChunks) releaseChunk(chunk);
      }
      submit(true);
      // A stream that ended on a slot boundary left its last range unrequested.
      if (this.mode === "remote" && hashedTo < position) {
        const done = requestHash(lastReleased, position);
        done.catch(() => undefined);
        inflight.push(done);
      }
      // The caller waits for the bytes to be in the file, not for the hash to catch up:
      // a chunked upload's next PATCH streams while the thread hashes this one's tail.
      // digest() waits for it.
      await writes.settled();
      const hashed = Promise.all(inflight).then(() => undefined);
      hashed.catch(() => undefined);
      this.hashed = hashed;
      if (options.sync) {
        await Promise.all(flushes);
        await handle.sync();
      }
    } catch (error) {
      await Promise.allSettled(inflight);
      throw error;
    } finally {
      // A slot still being filled was never lent out.
      if (slot) slots.give(slot);
      activeWriters -= 1;
      // Without `sync` nobody waits for the early flushes (the caller's fsync covers them
      // anyway): the file is closed once they are done.
      const closed = Promise.allSettled(flushes).then(() => handle.close());
      if (options.sync) await closed;
      else closed.catch(() => undefined);
    }
    return position - start;
  }

  /** Feeds the first `size` bytes of an existing file into the hash (a fresh writer's). */
  absorb(path: string, size: number): Promise<void> {
    if (this.mode === "local") throw new Error("absorb is for a fresh writer");
    // Nothing to take in (a new upload's first PATCH): the first write chooses where the
    // hash runs, so that a small upload is hashed here instead of with thread round trips.
    if (size === 0) return Promise.resolve();
    this.mode = "remote";
    return this.remoteHash().absorb(path, size);
  }

  /** The digest of everything written so far; the writer can keep going afterwards. */
  async digest(): Promise<Digest> {
    await this.hashed;
    if (this.mode === "remote") return this.remoteHash().digest();
    return `${this.algorithm}:${this.localHash().copy().digest("hex")}` as Digest;
  }

  /** Frees the running hash; the writer must not be used afterwards. */
  close(): void {
    this.remote?.close();
  }

  private localHash(): Hash {
    this.local ??= createHash(this.algorithm);
    return this.local;
  }

  private remoteHash(): RemoteHash {
    this.remote ??= new RemoteHash(this.algorithm);
    return this.remote;
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
