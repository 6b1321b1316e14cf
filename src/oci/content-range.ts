// Parsers for the byte-range headers of the API: `Content-Range` on chunked uploads
// (`<start>-<end>`, inclusive, optionally prefixed with `bytes `) and `Range` on blob
// reads (`bytes=<start>-<end>`, `bytes=<start>-`, `bytes=-<suffix>`). One range only.
// The HTTP layer parses; the registry resolves a parsed range against a blob's size.
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
 * A blob read's requested range before the blob's size is known: `first-[last]`, or the
 * last `suffix` bytes.
 */
export type ReadRange = { first: number; last?: number | undefined } | { suffix: number };

/**
 * Parses a blob read's `Range` header. Undefined when the header is absent or not a single
 * byte range (the whole blob is then served, as RFC 9110 allows).
 */
export function parseReadRange(header: string | undefined): ReadRange | undefined {
  if (header === undefined) return undefined;
  const match = readRange.exec(header.trim());
  if (!match) return undefined;
  const [, first = "", last = ""] = match;
  if (first === "" && last === "") return undefined;
  if (first === "") return { suffix: Number(last) };
  return { first: Number(first), last: last === "" ? undefined : Number(last) };
}

/**
 * Resolves a requested range against the blob size; undefined for no range. Throws
 * RANGE_INVALID, with the blob's `size` in its detail, when the range cannot be satisfied.
 */
export function resolveReadRange(
  range: ReadRange | undefined,
  size: number,
): ByteRange | undefined {
  if (range === undefined) return undefined;
  const unsatisfiable = () => new OciError("RANGE_INVALID", { range, size });
  if ("suffix" in range) {
    if (range.suffix === 0 || size === 0) throw unsatisfiable();
    return { start: Math.max(0, size - range.suffix), end: size - 1 };
  }
  const { first: start } = range;
  if (start >= size) throw unsatisfiable();
  const end = range.last === undefined ? size - 1 : Math.min(range.last, size - 1);
  if (end < start) throw unsatisfiable();
  return { start, end };
}
