// Parses and checks an uploaded manifest: its media type, its descriptors, and what it
// references (blobs, child manifests of an index, the `subject` of a referrer). The
// registry uses the result to verify references before it stores the manifest.
import { type Digest, parseDigest } from "./digest.ts";
import { isIndexMediaType, manifestMediaTypes, mediaTypes } from "./media-types.ts";
import { OciError } from "./oci-error.ts";

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  /** Foreign (non-distributable) layers carry URLs and need not be in the registry. */
  urls?: string[];
}

export interface ParsedManifest {
  mediaType: string;
  /** Blobs this manifest needs in the repository (config, layers), foreign layers excluded. */
  blobs: Digest[];
  /** Child manifests of an index. */
  manifests: Digest[];
  subject?: Descriptor;
  /** `artifactType`, or for an image manifest without it, the config's media type. */
  artifactType?: string;
  annotations?: Record<string, string>;
}

/** The spec's limit: registries must accept manifests of at least 4 MiB. */
export const maxManifestBytes = 4 * 1024 * 1024;

const invalid = (reason: string, extra: Record<string, unknown> = {}) =>
  new OciError("MANIFEST_INVALID", { reason, ...extra });

/**
 * Parses `bytes` sent with `contentType`. Throws MANIFEST_INVALID for anything that is
 * not a well-formed manifest of a supported media type.
 */
export function parseManifest(bytes: Buffer, contentType: string | undefined): ParsedManifest {
  let body: unknown;
  try {
    body = JSON.parse(bytes.toString("utf8"));
  } catch {
    throw invalid("manifest is not valid JSON");
  }
  if (!isObject(body)) throw invalid("manifest is not a JSON object");
  const declared = typeof body.mediaType === "string" ? body.mediaType : undefined;
  if (body.mediaType !== undefined && declared === undefined)
    throw invalid("mediaType is not a string");
  const header = contentType?.split(";")[0]?.trim().toLowerCase();
  const headerType = header && manifestMediaTypes.has(header) ? header : undefined;
  if (declared !== undefined && headerType !== undefined && declared !== headerType) {
    throw invalid("mediaType does not match Content-Type", {
      mediaType: declared,
      contentType: header,
    });
  }
  const mediaType = declared ?? headerType ?? inferMediaType(body);
  if (!manifestMediaTypes.has(mediaType)) {
    throw invalid("unsupported manifest media type", { mediaType });
  }
  if (body.schemaVersion !== 2 && mediaType !== mediaTypes.ociArtifact) {
    throw invalid("schemaVersion must be 2");
  }
  const subject = body.subject === undefined ? undefined : parseDescriptor(body.subject, "subject");
  const annotations = parseAnnotations(body.annotations, "annotations");
  const artifactType = optionalString(body.artifactType, "artifactType");

  if (isIndexMediaType(mediaType)) {
    const children = parseDescriptorList(body.manifests, "manifests");
    return {
      mediaType,
      blobs: [],
      manifests: children.map((d) => d.digest),
      subject,
      artifactType,
      annotations,
    };
  }
  if (mediaType === mediaTypes.ociArtifact) {
    const blobs = body.blobs === undefined ? [] : parseDescriptorList(body.blobs, "blobs");
    return {
      mediaType,
      blobs: distributable(blobs),
      manifests: [],
      subject,
      artifactType,
      annotations,
    };
  }
  const config = parseDescriptor(body.config, "config");
  const layers = parseDescriptorList(body.layers, "layers");
  return {
    mediaType,
    blobs: [config.digest, ...distributable(layers)],
    manifests: [],
    subject,
    artifactType: artifactType ?? config.mediaType,
    annotations,
  };
}

function inferMediaType(body: Record<string, unknown>): string {
  if (Array.isArray(body.manifests)) return mediaTypes.ociIndex;
  if (isObject(body.config)) return mediaTypes.ociManifest;
  throw invalid("manifest has no mediaType and no recognisable shape");
}

function distributable(descriptors: Descriptor[]): Digest[] {
  return descriptors
    .filter((d) => d.urls === undefined || d.urls.length === 0)
    .map((d) => d.digest);
}

function parseDescriptorList(value: unknown, field: string): Descriptor[] {
  if (!Array.isArray(value)) throw invalid(`${field} must be an array`);
  return value.map((item, index) => parseDescriptor(item, `${field}[${index}]`));
}

export function parseDescriptor(value: unknown, field: string): Descriptor {
  if (!isObject(value)) throw invalid(`${field} must be a descriptor object`);
  if (typeof value.mediaType !== "string" || value.mediaType.length === 0) {
    throw invalid(`${field}.mediaType must be a string`);
  }
  if (typeof value.digest !== "string") throw invalid(`${field}.digest must be a string`);
  let digest: Digest;
  try {
    digest = parseDigest(value.digest);
  } catch {
    throw invalid(`${field}.digest is not a valid digest`, { digest: value.digest.slice(0, 200) });
  }
  if (typeof value.size !== "number" || !Number.isSafeInteger(value.size) || value.size < 0) {
    throw invalid(`${field}.size must be a non-negative integer`);
  }
  const descriptor: Descriptor = { mediaType: value.mediaType, digest, size: value.size };
  const artifactType = optionalString(value.artifactType, `${field}.artifactType`);
  if (artifactType !== undefined) descriptor.artifactType = artifactType;
  const annotations = parseAnnotations(value.annotations, `${field}.annotations`);
  if (annotations !== undefined) descriptor.annotations = annotations;
  if (value.urls !== undefined) {
    if (!Array.isArray(value.urls) || !value.urls.every((u) => typeof u === "string")) {
      throw invalid(`${field}.urls must be an array of strings`);
    }
    descriptor.urls = value.urls as string[];
  }
  return descriptor;
}

function parseAnnotations(value: unknown, field: string): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value) || !Object.values(value).every((v) => typeof v === "string")) {
    throw invalid(`${field} must map strings to strings`);
  }
  return value as Record<string, string>;
}

function optionalString(value: unknown, field: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw invalid(`${field} must be a string`);
  return value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
