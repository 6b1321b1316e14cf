// Reads small request bodies (manifests) into memory, with a hard size limit so that a
// hostile client cannot make the server buffer without bound.
import type { IncomingMessage } from "node:http";
import { OciError } from "../oci/oci-error.ts";

export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = contentLength(req);
  if (declared !== undefined && declared > limit) {
    throw new OciError("MANIFEST_INVALID", { reason: "body too large", limit }, { status: 413 });
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req) {
    total += (chunk as Buffer).length;
    if (total > limit) {
      throw new OciError("MANIFEST_INVALID", { reason: "body too large", limit }, { status: 413 });
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, total);
}

/** The request's Content-Length, or undefined when absent; throws SIZE_INVALID when malformed. */
export function contentLength(req: IncomingMessage): number | undefined {
  const header = req.headers["content-length"];
  if (header === undefined) return undefined;
  if (!/^\d{1,15}$/.test(header))
    throw new OciError("SIZE_INVALID", { contentLength: header.slice(0, 32) });
  return Number(header);
}

/** Whether the request carries a body (a non-zero Content-Length or a chunked encoding). */
export function hasBody(req: IncomingMessage): boolean {
  const length = contentLength(req);
  if (length !== undefined) return length > 0;
  return req.headers["transfer-encoding"] !== undefined;
}
