// Small builders for test content: blobs with their digests, and image manifests,
// indexes and artifacts that reference them.
import { createHash, randomBytes } from "node:crypto";

export interface TestBlob {
  bytes: Buffer;
  digest: string;
  size: number;
}

export function blobOf(bytes: Buffer, algorithm: "sha256" | "sha512" = "sha256"): TestBlob {
  return {
    bytes,
    digest: `${algorithm}:${createHash(algorithm).update(bytes).digest("hex")}`,
    size: bytes.length,
  };
}

export function randomBlob(size: number): TestBlob {
  return blobOf(randomBytes(size));
}

export const ociManifestType = "application/vnd.oci.image.manifest.v1+json";
export const ociIndexType = "application/vnd.oci.image.index.v1+json";
export const dockerManifestType = "application/vnd.docker.distribution.manifest.v2+json";

export function imageManifest(
  config: TestBlob,
  layers: TestBlob[],
  extra: Record<string, unknown> = {},
  mediaType = ociManifestType,
): TestBlob & { json: string } {
  const docker = mediaType === dockerManifestType;
  const body = {
    schemaVersion: 2,
    mediaType,
    config: {
      mediaType: docker
        ? "application/vnd.docker.container.image.v1+json"
        : "application/vnd.oci.image.config.v1+json",
      digest: config.digest,
      size: config.size,
    },
    layers: layers.map((layer) => ({
      mediaType: docker
        ? "application/vnd.docker.image.rootfs.diff.tar.gzip"
        : "application/vnd.oci.image.layer.v1.tar+gzip",
      digest: layer.digest,
      size: layer.size,
    })),
    ...extra,
  };
  const json = JSON.stringify(body);
  return { ...blobOf(Buffer.from(json)), json };
}

export function imageIndex(
  children: { digest: string; size: number; platform?: object }[],
): TestBlob & {
  json: string;
} {
  const json = JSON.stringify({
    schemaVersion: 2,
    mediaType: ociIndexType,
    manifests: children.map((child) => ({ mediaType: ociManifestType, ...child })),
  });
  return { ...blobOf(Buffer.from(json)), json };
}
