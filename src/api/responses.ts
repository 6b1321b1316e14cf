// Small response writers shared by the handlers, and the one error writer that turns
// any thrown value into the spec's JSON error body.
import type { ServerResponse } from "node:http";
import type { Logger } from "pino";
import { OciError } from "../oci/oci-error.ts";

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  sendJsonText(res, status, JSON.stringify(body), headers);
}

/** Like sendJson, for a body already serialised. */
export function sendJsonText(
  res: ServerResponse,
  status: number,
  text: string,
  headers: Record<string, string> = {},
): void {
  const payload = Buffer.from(text);
  res.writeHead(status, {
    "Content-Type": "application/json",
    "Content-Length": String(payload.length),
    ...headers,
  });
  res.end(res.req.method === "HEAD" ? undefined : payload);
}

export function sendEmpty(
  res: ServerResponse,
  status: number,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { "Content-Length": "0", ...headers });
  res.end();
}

/**
 * Writes `error` as an OCI error response. Unknown errors become 500 UNKNOWN carrying the
 * request id, and are logged once here; nothing internal reaches the client.
 */
export function sendError(
  res: ServerResponse,
  error: unknown,
  requestId: string,
  log: Logger,
): void {
  const oci = error instanceof OciError ? error : new OciError("UNKNOWN", { requestId });
  if (oci.status >= 500) log.error({ err: error }, "request failed");
  if (res.headersSent) {
    // The body is already streaming: the only honest signal left is a broken response.
    res.destroy();
    return;
  }
  drainRequest(res);
  sendJson(res, oci.status, oci.toBody(), oci.headers);
}

/** A 416 names the blob's size in `Content-Range`, as RFC 9110 asks. */
export function withUnsatisfiedRange(error: unknown): never {
  const size = (error as OciError | undefined)?.detail as { size?: unknown } | undefined;
  if (
    error instanceof OciError &&
    error.code === "RANGE_INVALID" &&
    typeof size?.size === "number"
  ) {
    throw new OciError("RANGE_INVALID", error.detail, {
      cause: error,
      headers: { ...error.headers, "Content-Range": `bytes */${size.size}` },
    });
  }
  throw error;
}

/** A rejected request's body is read and dropped up to this many bytes, then the socket closes. */
const maxDrainBytes = 64 * 1024 * 1024;

/**
 * Discards what the client still sends after an early error, so that it can read the
 * answer instead of failing on a reset connection, and the connection stays usable. A
 * client that keeps sending past `maxDrainBytes` is disconnected.
 */
function drainRequest(res: ServerResponse): void {
  const req = res.req;
  if (req.complete) return;
  let drained = 0;
  req.on("data", (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > maxDrainBytes) req.socket.destroy();
  });
  req.on("error", () => undefined);
  req.resume();
}
