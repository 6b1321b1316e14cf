// Cuts a byte stream into bounded parts for the object-store drivers: the source's chunks
// are copied into pooled part buffers (so socket chunks become garbage at once), each full
// part is handed on while the next one fills, and at most a few parts are in flight, so
// memory stays bounded by the part size whatever the blob size.
import type { BufferPool } from "./buffer-pool.ts";

export interface PartStreamOptions {
  pool: BufferPool;
  /** Parts handed on and not yet settled before reading stalls (1: strictly in order). */
  maxInflight: number;
  signal?: AbortSignal | undefined;
  /** Sees each chunk of the source as it arrives, with the running total; may throw. */
  onChunk?: (chunk: Buffer, total: number) => void;
  /**
   * When the whole source fits in one part, it is given here (after the source ended)
   * instead of to `onPart`: a small blob is then stored with one request.
   */
  onSingle?: (bytes: Buffer) => Promise<void>;
}

/**
 * Streams `source` into `onPart(bytes, index)` calls (index from 1, in order; `bytes` is
 * only valid until the returned promise settles). Resolves the total size once every part
 * has settled; on a failure, waits for the parts in flight and rethrows.
 */
export async function streamParts(
  source: AsyncIterable<Buffer>,
  onPart: (bytes: Buffer, index: number) => Promise<void>,
  options: PartStreamOptions,
): Promise<number> {
  const { pool } = options;
  let part: Buffer | undefined;
  let filled = 0;
  let total = 0;
  let index = 0;
  const inflight: Promise<void>[] = [];
  const submit = () => {
    if (!part || filled === 0) return;
    const buffer = part;
    index += 1;
    const done = onPart(buffer.subarray(0, filled), index).finally(() => pool.give(buffer));
    done.catch(() => undefined);
    inflight.push(done);
    part = undefined;
    filled = 0;
  };
  try {
    for await (const chunk of source) {
      options.signal?.throwIfAborted();
      total += chunk.length;
      options.onChunk?.(chunk, total);
      let offset = 0;
      while (offset < chunk.length) {
        if (!part) {
          while (inflight.length >= options.maxInflight) await inflight.shift();
          part = pool.take();
        }
        const copied = chunk.copy(part, filled, offset);
        filled += copied;
        offset += copied;
        if (filled === part.length) submit();
      }
    }
    options.signal?.throwIfAborted();
    if (index === 0 && options.onSingle) {
      await options.onSingle(part ? part.subarray(0, filled) : Buffer.alloc(0));
    } else {
      submit();
    }
    while (inflight.length > 0) await inflight.shift();
    return total;
  } catch (error) {
    await Promise.allSettled(inflight);
    throw error;
  } finally {
    if (part) pool.give(part);
  }
}
