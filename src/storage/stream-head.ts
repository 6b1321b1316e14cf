// Reads the first bytes of a stream without losing the rest: a blob store decides where
// a blob goes (a table row or a file) by whether its body ends within a limit, and must
// still be able to stream a longer body on from where the look stopped.
import type { Readable } from "node:stream";

export type StreamHead =
  /** The whole body, which ended within the limit. */
  | { ended: true; bytes: Buffer }
  /** The body went past the limit: every byte of it, the ones already read first. */
  | { ended: false; whole: AsyncIterable<Buffer> };

/** Reads `source` until it ends or more than `limit` bytes have arrived. */
export async function readHead(
  source: Readable,
  limit: number,
  signal?: AbortSignal,
): Promise<StreamHead> {
  const iterator = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    while (length <= limit) {
      signal?.throwIfAborted();
      const next = await iterator.next();
      if (next.done) return { ended: true, bytes: Buffer.concat(chunks, length) };
      chunks.push(next.value);
      length += next.value.length;
    }
  } catch (error) {
    await iterator.return?.();
    throw error;
  }
  async function* whole(): AsyncGenerator<Buffer> {
    let finished = false;
    try {
      yield* chunks;
      // The same iterator goes on: the chunks it gave are not read twice.
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
        yield next.value;
      }
      finished = true;
    } finally {
      // A reader that stopped early releases the source, as `for await` on it would.
      if (!finished) await iterator.return?.();
    }
  }
  return { ended: false, whole: whole() };
}
