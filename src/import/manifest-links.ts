// What a fetched manifest links to, with the sizes and platforms the copy needs: the
// child manifests of an index (with their platform) and the distributable blobs of an
// image or artifact (config, layers, blobs; foreign layers with `urls` are left out, as
// the registry leaves them out of its reference checks). The registry's own parser
// checks the manifest first, so what it would refuse is refused before any byte moves.
import { type Descriptor, parseDescriptor, parseManifest } from "../oci/manifest.ts";
import { isIndexMediaType } from "../oci/media-types.ts";
import { ImportFailure } from "./import-failure.ts";
import type { Platform } from "./source-reference.ts";

export interface ChildManifest extends Descriptor {
  platform?: Platform | undefined;
}

export interface ManifestLinks {
  index: boolean;
  children: ChildManifest[];
  blobs: Descriptor[];
}

export function manifestLinks(bytes: Buffer, mediaType: string, name: string): ManifestLinks {
  let parsed: ReturnType<typeof parseManifest>;
  try {
    parsed = parseManifest(bytes, mediaType);
  } catch (error) {
    const reason = (error as { detail?: { reason?: unknown } }).detail?.reason;
    throw new ImportFailure(
      `the source's manifest ${name} cannot be stored: ${typeof reason === "string" ? reason : "invalid"} (${mediaType})`,
      { cause: error },
    );
  }
  const body = JSON.parse(bytes.toString("utf8")) as Record<string, unknown>;
  if (isIndexMediaType(parsed.mediaType)) {
    const list = body.manifests as unknown[];
    return {
      index: true,
      blobs: [],
      children: list.map((entry, i) => ({
        ...parseDescriptor(entry, `manifests[${i}]`),
        platform: platformOf((entry as { platform?: unknown }).platform),
      })),
    };
  }
  const listed = [
    ...(body.config === undefined ? [] : [body.config]),
    ...(Array.isArray(body.layers) ? body.layers : []),
    ...(Array.isArray(body.blobs) ? body.blobs : []),
  ].map((entry, i) => parseDescriptor(entry, `descriptor ${i}`));
  const wanted = new Set(parsed.blobs);
  const seen = new Set<string>();
  const blobs = listed.filter(
    (d) => wanted.has(d.digest) && !seen.has(d.digest) && seen.add(d.digest),
  );
  return { index: false, children: [], blobs };
}

/** Whether an index entry's platform is the one asked for (a variant only when asked). */
export function platformMatches(entry: ChildManifest, wanted: Platform): boolean {
  const p = entry.platform;
  if (!p || p.os !== wanted.os || p.architecture !== wanted.architecture) return false;
  return wanted.variant === undefined || p.variant === wanted.variant;
}

function platformOf(value: unknown): Platform | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const { os, architecture, variant } = value as Record<string, unknown>;
  if (typeof os !== "string" || typeof architecture !== "string") return undefined;
  return { os, architecture, variant: typeof variant === "string" ? variant : undefined };
}
