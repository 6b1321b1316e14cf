// Reads small request bodies (manifests) into memory, with a hard size limit so that a
// hostile client cannot make the server buffer without bound.
import type { IncomingMessage } from "node:http";
import { OciError } from "../oci/oci-error.ts";

export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = contentLength(req);
  if (declared !== undefined && declared > limit) throw tooLarge(limit);
  // Listeners rather than `for await`: leaving an async iteration early destroys the
  // request, and then nobody reads the rest of an oversized body. The client, still
  // sending, never gets to read the 413 and its connection hangs until the idle timeout.
  // Here the request is only paused; the error writer drains what follows.
  if (req.destroyed || req.readableEnded) {
    // Gone (the client left) or read by someone else: no end or close event would come.
    throw new Error("the request body is no longer readable");
  }
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const stop = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("close", onClose);
    };
    const onData = (chunk: Buffer) => {
      total += chunk.length;
      if (total > limit) {
        stop();
        req.pause();
        // Until the error writer takes over, an error must not go unheard.
        req.on("error", () => undefined);
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      stop();
      resolve(Buffer.concat(chunks, total));
    };
    const onError = (error: Error) => {
      stop();
      reject(error);
    };
    const onClose = () => {
      stop();
      reject(new Error("the request closed before its body ended"));
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
    req.on("close", onClose);
  });
}

function tooLarge(limit: number): OciError {
  return new OciError("MANIFEST_INVALID", { reason: "body too large", limit }, { status: 413 });
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
