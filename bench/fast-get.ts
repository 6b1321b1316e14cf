// Lean HTTP/1.1 GET over a raw socket for pull throughput: the body is read into one reused
// 1 MiB buffer and only counted (Content-Length, chunked, or read-to-close framing). node:http
// allocates a Buffer per 64 KiB read and, on this 2-core machine, saturates a core at about
// 1.5 GB/s, which would make the client the bottleneck of the pull figures.
import net from "node:net";
import { ChunkedDecoder, parseHead } from "./http1-parse.ts";

export interface FastGetResult {
  readonly status: number;
  readonly bodyBytes: number;
  /** Start of the body, kept only when the status is not 200 (for error messages). */
  readonly errorBody: string;
}

const readBufferBytes = 1024 * 1024;
const maxHeadBytes = 64 * 1024;

export function fastGet(
  origin: URL,
  path: string,
  headers: Readonly<Record<string, string>> = {},
  idleTimeoutMs = 60_000,
): Promise<FastGetResult> {
  return new Promise((resolve, reject) => {
    let head: Buffer = Buffer.alloc(0);
    let inBody = false;
    let status = 0;
    let framing: "length" | "chunked" | "close" = "close";
    let contentLength = 0;
    let bodyBytes = 0;
    let errorBody = "";
    let settled = false;
    const chunked = new ChunkedDecoder();

    const finish = (error?: Error): void => {
      if (settled) return;
      settled = true;
      socket.destroy();
      if (error) reject(error);
      else resolve({ status, bodyBytes, errorBody });
    };
    const count = (data: Uint8Array): void => {
      bodyBytes += data.length;
      if (status !== 200 && errorBody.length < 4096)
        errorBody += Buffer.from(data).toString("utf8");
    };
    const feedBody = (data: Buffer, start: number): void => {
      if (start >= data.length) return;
      if (framing === "chunked") {
        try {
          if (chunked.feed(data, start, count) >= 0) finish();
        } catch (error) {
          finish(new Error(`GET ${path}: ${(error as Error).message}`));
        }
      } else if (framing === "length") {
        count(data.subarray(start, start + contentLength - bodyBytes));
        if (bodyBytes >= contentLength) finish();
      } else {
        count(data.subarray(start));
      }
    };
    const parseResponseHead = (data: Buffer): void => {
      head = Buffer.concat([head, data]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) {
        if (head.length > maxHeadBytes) finish(new Error(`GET ${path}: response head too large`));
        return;
      }
      const parsed = parseHead(head.toString("latin1", 0, end));
      status = parsed.status;
      if (parsed.chunked) framing = "chunked";
      else if (parsed.contentLength !== undefined) {
        framing = "length";
        contentLength = parsed.contentLength;
      }
      inBody = true;
      if (framing === "length" && contentLength === 0) finish();
      else feedBody(head, end + 4);
    };
    const socket = net.connect({
      host: origin.hostname,
      port: Number(origin.port),
      onread: {
        buffer: Buffer.allocUnsafe(readBufferBytes),
        callback(bytesRead: number, readBuffer: Uint8Array): boolean {
          const data = Buffer.from(readBuffer.buffer, readBuffer.byteOffset, bytesRead);
          if (inBody) feedBody(data, 0);
          else parseResponseHead(data);
          return true;
        },
      },
    });
    socket.setNoDelay(true);
    socket.setTimeout(idleTimeoutMs, () =>
      finish(new Error(`GET ${path}: no data for ${idleTimeoutMs} ms`)),
    );
    socket.on("error", (error) => finish(new Error(`GET ${path}: ${error.message}`)));
    socket.on("end", () => {
      if (inBody && framing === "close") finish();
      else finish(new Error(`GET ${path}: connection closed after ${bodyBytes} body bytes`));
    });
    socket.on("connect", () => {
      const extra = Object.entries(headers)
        .map(([name, value]) => `${name}: ${value}\r\n`)
        .join("");
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: ${origin.host}\r\nConnection: close\r\n${extra}\r\n`,
      );
    });
  });
}
