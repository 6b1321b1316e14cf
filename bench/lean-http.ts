// Lean keep-alive HTTP/1.1 connection for the request-rate load generator: writes a
// pre-serialised request, parses only the response framing, and discards the body. Several
// times cheaper per request than node:http, whose client cost would otherwise cap the
// measurable rate (one request in flight per connection, no pipelining).
import net from "node:net";
import { ChunkedDecoder, mayHaveBody, parseHead } from "./http1-parse.ts";

export interface LeanResponse {
  readonly status: number;
  /** Start of the body, kept only when asked (for error messages). */
  readonly body: string;
}

const readBufferBytes = 64 * 1024;
const maxHeadBytes = 64 * 1024;
const maxKeptBody = 1000;
const empty = Buffer.alloc(0);

/** Serialises a request once; reuse the result for every identical request. */
export function serializeRequest(
  method: string,
  path: string,
  host: string,
  headers: Readonly<Record<string, string>> = {},
): Buffer {
  const lines = [`${method} ${path} HTTP/1.1`, `Host: ${host}`];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  return Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1");
}

interface Pending {
  readonly method: string;
  readonly keepBody: boolean;
  readonly resolve: (response: LeanResponse) => void;
  readonly reject: (error: Error) => void;
}

export class LeanConnection {
  private socket: net.Socket | undefined;
  private pending: Pending | undefined;
  private head: Buffer = empty;
  private inBody = false;
  private status = 0;
  private remaining = 0;
  private chunked: ChunkedDecoder | undefined;
  private closeAfter = false;
  private body = "";
  private readonly readBuffer = Buffer.allocUnsafe(readBufferBytes);

  constructor(
    private readonly origin: URL,
    private readonly timeoutMs: number,
  ) {}

  /** Sends one request; only one may be in flight. */
  request(method: string, raw: Buffer, keepBody: boolean): Promise<LeanResponse> {
    return new Promise((resolve, reject) => {
      this.pending = { method, keepBody, resolve, reject };
      this.head = empty;
      this.inBody = false;
      this.body = "";
      this.chunked = undefined;
      this.connection().write(raw);
    });
  }

  close(): void {
    this.socket?.destroy();
    this.socket = undefined;
  }

  private connection(): net.Socket {
    if (this.socket && !this.socket.destroyed) return this.socket;
    const socket = net.connect({
      host: this.origin.hostname,
      port: Number(this.origin.port),
      noDelay: true,
      onread: {
        buffer: this.readBuffer,
        callback: (bytesRead: number, buffer: Uint8Array): boolean => {
          if (this.socket === socket) {
            this.feed(Buffer.from(buffer.buffer, buffer.byteOffset, bytesRead));
          }
          return true;
        },
      },
    });
    socket.setTimeout(this.timeoutMs, () =>
      this.fail(socket, new Error(`no answer in ${this.timeoutMs} ms`)),
    );
    socket.on("error", (error) => this.fail(socket, error));
    socket.on("close", () => this.fail(socket, new Error("connection closed by the server")));
    this.socket = socket;
    return socket;
  }

  private fail(socket: net.Socket, error: Error): void {
    socket.destroy();
    if (this.socket !== socket) return;
    this.socket = undefined;
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(error);
  }

  private abort(error: Error): void {
    if (this.socket) this.fail(this.socket, error);
  }

  private complete(): void {
    const pending = this.pending;
    this.pending = undefined;
    if (this.closeAfter) this.close();
    pending?.resolve({ status: this.status, body: this.body });
  }

  private keep(part: Uint8Array): void {
    if (this.pending?.keepBody && this.body.length < maxKeptBody) {
      this.body += Buffer.from(part).toString("utf8");
    }
  }

  private feed(data: Buffer): void {
    const pending = this.pending;
    if (!pending) return;
    let offset = 0;
    if (!this.inBody) {
      const view = this.head.length > 0 ? Buffer.concat([this.head, data]) : data;
      const end = view.indexOf("\r\n\r\n");
      if (end < 0) {
        this.head = Buffer.from(view);
        if (this.head.length > maxHeadBytes) {
          this.abort(new Error("response head too large"));
        }
        return;
      }
      const parsed = parseHead(view.toString("latin1", 0, end));
      this.status = parsed.status;
      this.closeAfter = parsed.close;
      this.inBody = true;
      this.head = empty;
      data = view;
      offset = end + 4;
      if (!mayHaveBody(pending.method, parsed.status)) {
        this.complete();
        return;
      }
      if (parsed.chunked) this.chunked = new ChunkedDecoder();
      else if (parsed.contentLength !== undefined) this.remaining = parsed.contentLength;
      else {
        this.abort(new Error("response without length framing"));
        return;
      }
      if (!this.chunked && this.remaining === 0) {
        this.complete();
        return;
      }
    }
    if (this.chunked) {
      try {
        if (this.chunked.feed(data, offset, (part) => this.keep(part)) >= 0) this.complete();
      } catch (error) {
        this.abort(error as Error);
      }
      return;
    }
    const take = Math.min(this.remaining, data.length - offset);
    this.keep(data.subarray(offset, offset + take));
    this.remaining -= take;
    if (this.remaining === 0) this.complete();
  }
}
