// Frees the memory of a request body's chunks as soon as they are copied, instead of at
// the next garbage collection.
//
// Node's HTTP parser copies every piece of a request body into a fresh buffer outside the
// JavaScript heap. A blob upload copies each one into a slot (hashed-writer.ts), after
// which the chunk is garbage, but its memory comes back only when V8 collects the small
// object that holds it: the next scavenge, or the next mark-compact once a scavenge
// promoted it while it waited in a stream's buffer. During 16 concurrent uploads that was
// 8-16 MiB of chunks at any moment (bench `rss`, `process.memoryUsage().arrayBuffers`
// 12-21 MiB against 3-5 MiB once released), and the mark-compacts that their memory
// pressure set off ran 3 times a second.
//
// Transferring an ArrayBuffer detaches it from its JavaScript object; transferring it to
// a port that is already closed drops the message, and with it the memory, at once. Node
// 20 has no `ArrayBuffer.prototype.transfer` without a V8 flag; this is the same effect
// through a stable API.
import type { Readable } from "node:stream";
import { MessageChannel } from "node:worker_threads";

const { port1: sink, port2 } = new MessageChannel();
port2.close();
sink.unref();

/** Sources whose chunks nobody but their one reader holds. */
const owned = new WeakSet<Readable>();
let releasedBytes = 0;

/**
 * Says that `source`'s chunks are its reader's alone (an HTTP request body: the parser
 * gives each piece a buffer of its own), so that a writer may free each one once copied.
 */
export function ownedChunks<T extends Readable>(source: T): T {
  owned.add(source);
  return source;
}

/** Whether `source` was marked by ownedChunks. */
export function hasOwnedChunks(source: Readable): boolean {
  return owned.has(source);
}

/**
 * Frees `chunk`'s memory now when the chunk is the whole of its buffer; leaves it alone
 * otherwise (a view into a larger buffer may share it with others). The chunk reads as
 * empty afterwards.
 */
export function releaseChunk(chunk: Buffer): void {
  const { buffer } = chunk;
  if (!(buffer instanceof ArrayBuffer)) return;
  if (chunk.byteOffset !== 0 || chunk.byteLength !== buffer.byteLength) return;
  const bytes = buffer.byteLength;
  try {
    sink.postMessage(null, [buffer]);
  } catch {
    // A buffer that cannot be transferred is left to the garbage collector.
    return;
  }
  releasedBytes += bytes;
}

/** Bytes freed by releaseChunk in this process so far (for the tests that check it happens). */
export function releasedChunkBytes(): number {
  return releasedBytes;
}
