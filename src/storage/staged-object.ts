// The atomic publish shared by the object-store drivers: bytes are staged as parts that no
// reader can see (S3 multipart-upload parts, Azure uncommitted blocks), hashed as they
// stream, and only once the digest and size verify do the parts become the object at the
// blob's key. A stream that fails, or does not verify, leaves nothing visible.
import type { Readable } from "node:stream";
import { type Digest, digestAlgorithm, hasherDigest, newHasher } from "../oci/digest.ts";
import { type BlobInfo, DigestMismatchError, SizeMismatchError } from "./blob-store.ts";
import { BufferPool } from "./buffer-pool.ts";
import { streamParts } from "./part-stream.ts";

/** An object being written at its final key, invisible until `publish`. */
export interface StagedObject {
  /** Stores part `index` (from 1); parts may be in flight concurrently. */
  stage(bytes: Buffer, index: number): Promise<void>;
  /** Makes the staged parts, in index order, the object; `size` is their total. */
  publish(size: number): Promise<void>;
  /** Stores bytes that fit one part as the whole object (they are already verified). */
  putWhole(bytes: Buffer): Promise<void>;
  /** Drops what was staged; best effort (the store expires leftovers by itself). */
  discard(): Promise<void>;
}

/**
 * 8 MiB parts: above S3's 5 MiB minimum, and with two in flight and one filling, an
 * ingest holds at most 24 MiB whatever the blob size (S3's 10,000 parts cap a blob at
 * 78 GiB).
 */
export const ingestPartBytes = 8 * 1024 * 1024;
const partsInFlight = 2;
const ingestPool = new BufferPool(ingestPartBytes, partsInFlight + 1);

export interface VerifiedIngestOptions {
  digest: Digest;
  expectedSize?: number | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * Streams `source` into `target` while hashing it and publishes it only when it matches
 * `digest` (and `expectedSize`). Throws DigestMismatchError, SizeMismatchError, or the
 * source's or the store's error; nothing is visible then.
 */
export async function ingestVerified(
  source: Readable | AsyncIterable<Buffer>,
  target: StagedObject,
  options: VerifiedIngestOptions,
): Promise<BlobInfo> {
  const { digest, expectedSize } = options;
  const algorithm = digestAlgorithm(digest);
  const hash = newHasher(algorithm);
  const verify = (size: number) => {
    if (expectedSize !== undefined && size !== expectedSize) {
      throw new SizeMismatchError(expectedSize, size);
    }
    const actual = hasherDigest(algorithm, hash);
    if (actual !== digest) throw new DigestMismatchError(digest, actual);
  };
  let whole = false;
  try {
    const size = await streamParts(source, (bytes, index) => target.stage(bytes, index), {
      pool: ingestPool,
      maxInflight: partsInFlight,
      signal: options.signal,
      onChunk: (chunk, total) => {
        hash.update(chunk);
        // Past the announced length there is no point receiving the rest.
        if (expectedSize !== undefined && total > expectedSize) {
          throw new SizeMismatchError(expectedSize, total);
        }
      },
      onSingle: async (bytes) => {
        verify(bytes.length);
        whole = true;
        await target.putWhole(bytes);
      },
    });
    if (!whole) {
      verify(size);
      await target.publish(size);
    }
    return { size };
  } catch (error) {
    if (!whole) await target.discard().catch(() => undefined);
    throw error;
  }
}
