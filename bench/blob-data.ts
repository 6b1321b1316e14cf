// Test data generated once per run and shared by both registries: a large random blob with
// cheap distinct variants (digests computed up front), and small OCI images (config + layers +
// manifest) with their digests.
import { createHash, type Hash, randomBytes } from "node:crypto";

export const ociManifestType = "application/vnd.oci.image.manifest.v1+json";
export const ociConfigType = "application/vnd.oci.image.config.v1+json";
export const ociLayerType = "application/vnd.oci.image.layer.v1.tar";

const tailBytes = 16;

/** Bytes of a blob, produced as slices so that nothing is copied while uploading. */
export interface BlobSource {
  readonly size: number;
  readonly digest: string;
  /** Yields views over [start, end) in slices of at most sliceSize bytes. */
  slices(start: number, end: number, sliceSize: number): Iterable<Buffer>;
}

export function sha256(data: Buffer): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

/**
 * One random buffer of `size` bytes; variant v is that buffer with its last 16 bytes
 * replaced by a marker for v. Every variant has its own digest (so no registry can skip an
 * upload because it already holds the content) while the client holds one buffer, and the
 * SHA-256 of the common prefix is computed once.
 */
export class LargeBlobs {
  readonly size: number;
  private readonly base: Buffer;
  private readonly prefixHash: Hash;
  private readonly variants = new Map<number, BlobSource>();

  constructor(sizeBytes: number) {
    if (sizeBytes < tailBytes * 2) throw new Error("blob too small");
    this.size = sizeBytes;
    this.base = Buffer.allocUnsafe(sizeBytes);
    const step = 16 * 1024 * 1024;
    for (let offset = 0; offset < sizeBytes; offset += step) {
      randomBytes(Math.min(step, sizeBytes - offset)).copy(this.base, offset);
    }
    this.prefixHash = createHash("sha256").update(this.base.subarray(0, sizeBytes - tailBytes));
  }

  variant(index: number): BlobSource {
    const cached = this.variants.get(index);
    if (cached) return cached;
    const tail = Buffer.alloc(tailBytes);
    tail.write("meridian-bench", 0, "latin1");
    tail.writeUInt16BE(index, tailBytes - 2);
    const digest = `sha256:${this.prefixHash.copy().update(tail).digest("hex")}`;
    const base = this.base;
    const prefixEnd = this.size - tailBytes;
    const source: BlobSource = {
      size: this.size,
      digest,
      *slices(start: number, end: number, sliceSize: number): Iterable<Buffer> {
        let offset = start;
        while (offset < end) {
          if (offset < prefixEnd) {
            const stop = Math.min(end, prefixEnd, offset + sliceSize);
            yield base.subarray(offset, stop);
            offset = stop;
          } else {
            yield tail.subarray(offset - prefixEnd, end - prefixEnd);
            offset = end;
          }
        }
      },
    };
    this.variants.set(index, source);
    return source;
  }
}

export interface SmallBlob {
  readonly data: Buffer;
  readonly digest: string;
}

export interface SmallImage {
  readonly config: SmallBlob;
  readonly layers: readonly SmallBlob[];
  readonly manifest: SmallBlob;
}

function smallBlob(data: Buffer): SmallBlob {
  return { data, digest: sha256(data) };
}

/**
 * The config and manifest of an image with the given layers; `configExtra` joins the config
 * (a nonce makes an image whose layers exist already new).
 */
export function imageOf(
  layers: readonly { readonly digest: string; readonly size: number }[],
  configExtra: Record<string, unknown> = {},
): { config: SmallBlob; manifest: SmallBlob } {
  const config = smallBlob(
    Buffer.from(
      JSON.stringify({
        architecture: "amd64",
        os: "linux",
        rootfs: { type: "layers", diff_ids: layers.map((layer) => layer.digest) },
        ...configExtra,
      }),
    ),
  );
  const descriptor = (mediaType: string, blob: { digest: string; size: number }) => ({
    mediaType,
    digest: blob.digest,
    size: blob.size,
  });
  const manifest = smallBlob(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: ociManifestType,
        config: descriptor(ociConfigType, { digest: config.digest, size: config.data.length }),
        layers: layers.map((layer) => descriptor(ociLayerType, layer)),
      }),
    ),
  );
  return { config, manifest };
}

/** An image with a ~200-byte config and `layerCount` random layers of `layerBytes`. */
export function makeSmallImage(layerCount = 2, layerBytes = 4096): SmallImage {
  const layers = Array.from({ length: layerCount }, () => smallBlob(randomBytes(layerBytes)));
  const sized = layers.map((layer) => ({ digest: layer.digest, size: layer.data.length }));
  return { ...imageOf(sized), layers };
}
