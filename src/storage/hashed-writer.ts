// Streams bytes into a file while hashing them, then flushes the file to disk: the one
// place where blob bytes are written.

import type { Hash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { open } from "node:fs/promises";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { type Digest, type DigestAlgorithm, hasherDigest, newHasher } from "../oci/digest.ts";

const writeChunkBytes = 1024 * 1024;

export class HashedWriter {
  private readonly hash: Hash;

  constructor(readonly algorithm: DigestAlgorithm) {
    this.hash = newHasher(algorithm);
  }

  /**
   * Writes `source` into `path` from byte `start` (flags "w" to create, "r+" to extend),
   * fsyncs it, and returns the number of bytes written.
   */
  async write(
    source: Readable,
    path: string,
    flags: "w" | "r+",
    start: number,
    options: { sync: boolean; signal?: AbortSignal | undefined },
  ): Promise<number> {
    let written = 0;
    const hash = this.hash;
    const out = createWriteStream(path, { flags, start, highWaterMark: writeChunkBytes });
    await pipeline(
      source,
      async function* (chunks: AsyncIterable<Buffer>) {
        for await (const chunk of chunks) {
          hash.update(chunk);
          written += chunk.length;
          yield chunk;
        }
      },
      out,
      options.signal ? { signal: options.signal } : {},
    );
    if (options.sync) await syncFile(path);
    return written;
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
