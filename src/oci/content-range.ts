// Parsers for the byte-range headers of the API: `Content-Range` on chunked uploads
// (`<start>-<end>`, inclusive, optionally prefixed with `bytes `) and `Range` on blob
// reads (`bytes=<start>-<end>`, `bytes=<start>-`, `bytes=-<suffix>`). One range only.
import { OciError } from "./oci-error.ts";

export interface ByteRange {
  /** First byte, inclusive. */
  start: number;
  /** Last byte, inclusive. */
  end: number;
}

const uploadRange = /^(?:bytes[ =])?(\d{1,15})-(\d{1,15})(?:\/(?:\d{1,15}|\*))?$/;

/** Parses an upload chunk's `Content-Range`; throws RANGE_INVALID (416) when malformed. */
export function parseUploadContentRange(header: string): ByteRange {
  const match = uploadRange.exec(header.trim());
  if (!match) throw new OciError("RANGE_INVALID", { contentRange: header.slice(0, 100) });
  const start = Number(match[1]);
  const end = Number(match[2]);
  if (end < start) throw new OciError("RANGE_INVALID", { contentRange: header.slice(0, 100) });
  return { start, end };
}

const readRange = /^bytes=(\d{0,15})-(\d{0,15})$/;

/**
 * Resolves a blob read's `Range` header against the blob size. Returns undefined when the
 * header is absent or not a single byte range (the whole blob is then served, as RFC 9110
 * allows); throws RANGE_INVALID when the range cannot be satisfied.
 */
export function resolveReadRange(header: string | undefined, size: number): ByteRange | undefined {
  if (header === undefined) return undefined;
  const match = readRange.exec(header.trim());
  if (!match) return undefined;
  const [, first = "", last = ""] = match;
  if (first === "" && last === "") return undefined;
  const unsatisfiable = () =>
    new OciError(
      "RANGE_INVALID",
      { range: header.slice(0, 100), size },
      {
        headers: { "Content-Range": `bytes */${size}` },
      },
    );
  if (first === "") {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) throw unsatisfiable();
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  if (start >= size) throw unsatisfiable();
  const end = last === "" ? size - 1 : Math.min(Number(last), size - 1);
  if (end < start) throw unsatisfiable();
  return { start, end };
}
