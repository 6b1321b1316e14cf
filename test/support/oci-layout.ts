// Builds OCI image layouts on disk (the `oci:` transport of skopeo) from code, and reads them back:
// images with real gzip'ed tar layers, configs with true diff_ids, manifests and multi-platform
// indexes, tagged in index.json with `org.opencontainers.image.ref.name`. No network, no docker.
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { buildTar } from "./tar.ts";

export const MEDIA_TYPES = {
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
} as const;

export const REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name";

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

export interface ImageSpec {
  architecture: string;
  os: string;
  variant?: string;
  /** Uncompressed size of the random file inside each layer's tar, one entry per layer. */
  layerSizes: readonly number[];
}

export interface BuiltImage {
  readonly manifest: Descriptor;
  readonly manifestBytes: Buffer;
  readonly config: Descriptor;
  readonly configBytes: Buffer;
  readonly layers: readonly Descriptor[];
  readonly diffIds: readonly string[];
}

export interface BuiltIndex {
  readonly index: Descriptor;
  readonly indexBytes: Buffer;
  readonly images: readonly BuiltImage[];
}

export function sha256Digest(bytes: Buffer): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** Canonical-looking but deliberately indented JSON, so a registry that re-serialises is caught. */
function jsonBytes(value: unknown): Buffer {
  return Buffer.from(`${JSON.stringify(value, null, 2)}\n`, "utf8");
}

export function blobPath(layoutDir: string, digest: string): string {
  const [algorithm, hex] = digest.split(":");
  if (algorithm === undefined || hex === undefined || !/^[a-f0-9]{64}$/.test(hex)) {
    throw new Error(`unsupported digest ${digest}`);
  }
  return join(layoutDir, "blobs", algorithm, hex);
}

/** Writes an OCI image layout: call `add*` then `tag`, and `finish` to write index.json. */
export class OciLayoutBuilder {
  private readonly refs: Descriptor[] = [];

  private constructor(readonly dir: string) {}

  static async create(dir: string): Promise<OciLayoutBuilder> {
    await mkdir(join(dir, "blobs", "sha256"), { recursive: true });
    await writeFile(join(dir, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
    return new OciLayoutBuilder(dir);
  }

  async putBlob(mediaType: string, bytes: Buffer): Promise<Descriptor> {
    const digest = sha256Digest(bytes);
    await writeFile(blobPath(this.dir, digest), bytes);
    return { mediaType, digest, size: bytes.length };
  }

  /** One image: random-content gzip'ed tar layers, an OCI config and an OCI image manifest. */
  async addImage(spec: ImageSpec): Promise<BuiltImage> {
    const layers: Descriptor[] = [];
    const diffIds: string[] = [];
    for (const [position, size] of spec.layerSizes.entries()) {
      const tar = buildTar([
        { name: `layer${position}/README`, content: Buffer.from(`layer ${position}\n`) },
        { name: `layer${position}/random.bin`, content: randomBytes(size) },
      ]);
      diffIds.push(sha256Digest(tar));
      layers.push(await this.putBlob(MEDIA_TYPES.ociLayerGzip, gzipSync(tar)));
    }
    const configBytes = jsonBytes({
      created: "2024-01-02T03:04:05Z",
      architecture: spec.architecture,
      os: spec.os,
      ...(spec.variant === undefined ? {} : { variant: spec.variant }),
      config: {
        Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        Cmd: ["/bin/sh"],
        Labels: { "org.example.fixture": "meridian-e2e" },
      },
      rootfs: { type: "layers", diff_ids: diffIds },
      history: diffIds.map((_, position) => ({
        created: "2024-01-02T03:04:05Z",
        created_by: `fixture layer ${position}`,
      })),
    });
    const config = await this.putBlob(MEDIA_TYPES.ociConfig, configBytes);
    const manifestBytes = jsonBytes({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      config,
      layers,
      annotations: { "org.opencontainers.image.title": "meridian e2e fixture" },
    });
    const manifest = await this.putBlob(MEDIA_TYPES.ociManifest, manifestBytes);
    return { manifest, manifestBytes, config, configBytes, layers, diffIds };
  }

  /** A multi-platform OCI index over one freshly built image per spec. */
  async addIndex(specs: readonly ImageSpec[]): Promise<BuiltIndex> {
    const images: BuiltImage[] = [];
    for (const spec of specs) images.push(await this.addImage(spec));
    const indexBytes = jsonBytes({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociIndex,
      manifests: images.map((image, position) => {
        const spec = specs[position];
        if (spec === undefined) throw new Error("unreachable");
        const platform: Platform = { architecture: spec.architecture, os: spec.os };
        if (spec.variant !== undefined) platform.variant = spec.variant;
        return { ...image.manifest, platform };
      }),
    });
    const index = await this.putBlob(MEDIA_TYPES.ociIndex, indexBytes);
    return { index, indexBytes, images };
  }

  /** Makes `descriptor` reachable as `oci:<dir>:<name>`. */
  tag(descriptor: Descriptor, name: string): void {
    this.refs.push({
      mediaType: descriptor.mediaType,
      digest: descriptor.digest,
      size: descriptor.size,
      annotations: { [REF_NAME_ANNOTATION]: name },
    });
  }

  async finish(): Promise<void> {
    await writeFile(
      join(this.dir, "index.json"),
      jsonBytes({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: this.refs }),
    );
  }
}

interface ManifestLike {
  mediaType?: string;
  manifests?: Descriptor[];
  config?: Descriptor;
  layers?: Descriptor[];
}

/** The descriptor index.json of a layout gives for the tag `name`. */
export async function readLayoutRef(layoutDir: string, name: string): Promise<Descriptor> {
  const index = JSON.parse(await readFile(join(layoutDir, "index.json"), "utf8")) as ManifestLike;
  const found = (index.manifests ?? []).filter(
    (descriptor) => descriptor.annotations?.[REF_NAME_ANNOTATION] === name,
  );
  const [descriptor] = found;
  if (descriptor === undefined || found.length !== 1) {
    throw new Error(`${layoutDir}/index.json has ${found.length} entries named ${name}`);
  }
  return descriptor;
}

/** Reads a blob and checks that its bytes hash to its name and its descriptor's size. */
export async function readVerifiedBlob(layoutDir: string, descriptor: Descriptor): Promise<Buffer> {
  const bytes = await readFile(blobPath(layoutDir, descriptor.digest));
  const actual = sha256Digest(bytes);
  if (actual !== descriptor.digest || bytes.length !== descriptor.size) {
    throw new Error(
      `${layoutDir}: blob ${descriptor.digest} (size ${descriptor.size}) holds ${actual} (size ${bytes.length})`,
    );
  }
  return bytes;
}

/**
 * Every blob reachable from `root` (the root itself, child manifests of indexes, configs and
 * layers), keyed by digest, each verified against its digest.
 */
export async function collectReachableBlobs(
  layoutDir: string,
  root: Descriptor,
): Promise<Map<string, Buffer>> {
  const blobs = new Map<string, Buffer>();
  const visit = async (descriptor: Descriptor): Promise<void> => {
    if (blobs.has(descriptor.digest)) return;
    const bytes = await readVerifiedBlob(layoutDir, descriptor);
    blobs.set(descriptor.digest, bytes);
    const isIndex =
      descriptor.mediaType === MEDIA_TYPES.ociIndex ||
      descriptor.mediaType === MEDIA_TYPES.dockerManifestList;
    const isManifest =
      descriptor.mediaType === MEDIA_TYPES.ociManifest ||
      descriptor.mediaType === MEDIA_TYPES.dockerManifest;
    if (!isIndex && !isManifest) return;
    const parsed = JSON.parse(bytes.toString("utf8")) as ManifestLike;
    const children = isIndex
      ? (parsed.manifests ?? [])
      : [...(parsed.config ? [parsed.config] : []), ...(parsed.layers ?? [])];
    for (const child of children) await visit(child);
  };
  await visit(root);
  return blobs;
}
