// Reading a source registry's answers: bodies with a size limit, a manifest's media type,
// the descriptors of an index (a referrers answer), Retry-After, the backoff between
// attempts, and the one-word reason of a failed connection.
import { type Descriptor, parseDescriptor } from "../oci/manifest.ts";
import { manifestMediaTypes, mediaTypes } from "../oci/media-types.ts";
import { ImportFailure } from "./import-failure.ts";

/** Milliseconds a Retry-After asks for (seconds or an HTTP date), or undefined. */
export function retryAfterMs(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(at - now, 0);
}

/** The wait before attempt `attempt + 1` when the source gives no Retry-After. */
export function backoffMs(attempt: number): number {
  return Math.min(500 * 2 ** (attempt - 1), 10_000);
}

/** The manifest media type: the Content-Type when it names one, else the body's field. */
export function mediaTypeOf(response: Response, bytes: Buffer): string {
  const header = response.headers.get("content-type")?.split(";")[0]?.trim().toLowerCase();
  if (header && manifestMediaTypes.has(header)) return header;
  try {
    const declared = (JSON.parse(bytes.toString("utf8")) as { mediaType?: unknown }).mediaType;
    if (typeof declared === "string") return declared;
  } catch {
    // The registry's parser says what is wrong when the manifest is stored.
  }
  return header ?? mediaTypes.ociManifest;
}

/** The descriptors of an index (a referrers answer); undefined when it is not one. */
export function descriptorsOf(bytes: Buffer): Descriptor[] | undefined {
  try {
    const body = JSON.parse(bytes.toString("utf8")) as { manifests?: unknown };
    if (!Array.isArray(body.manifests)) return undefined;
    return body.manifests.map((entry, i) => parseDescriptor(entry, `manifests[${i}]`));
  } catch {
    return undefined;
  }
}

/** The body, refusing more than `limit` bytes. */
export async function readLimited(response: Response, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  if (!response.body) return Buffer.alloc(0);
  for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
    total += chunk.length;
    if (total > limit) {
      await response.body.cancel().catch(() => undefined);
      throw new ImportFailure(
        `the source sent more than ${limit} bytes where a manifest was expected`,
      );
    }
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks, total);
}

/** The code of a failed connection (fetch hides it in the cause), or its message. */
export function networkReason(error: unknown): string {
  const cause =
    error instanceof Error
      ? (error.cause as { code?: unknown; message?: unknown } | undefined)
      : undefined;
  if (typeof cause?.code === "string") return cause.code;
  if (typeof cause?.message === "string") return cause.message;
  return error instanceof Error ? error.message : String(error);
}
