// HTTP/1.1 response parsing for the global endpoint's read relay: the status line and
// headers, then the body's framing (RFC 9112 section 6). Node's own client copies every
// body chunk out of its parser; the relay needs only the head parsed and the body framed,
// so that body bytes go from one socket to the other as they came.

/** Larger response heads than this are refused (the replicas send a few hundred bytes). */
export const maxHeadBytes = 64 * 1024;

export interface ResponseHead {
  status: number;
  /** Lower-case names; a name sent more than once keeps every value. */
  headers: Record<string, string | string[]>;
  /** Bytes of the status line and headers, with the blank line. */
  length: number;
}

export class MalformedResponseError extends Error {
  constructor(reason: string) {
    super(`malformed upstream response: ${reason}`);
    this.name = "MalformedResponseError";
  }
}

/** The head at the start of `bytes`, or undefined while it is incomplete. */
export function parseResponseHead(bytes: Buffer): ResponseHead | undefined {
  const end = bytes.indexOf("\r\n\r\n");
  if (end === -1) {
    if (bytes.length > maxHeadBytes) throw new MalformedResponseError("head too large");
    return undefined;
  }
  const lines = bytes.subarray(0, end).toString("latin1").split("\r\n");
  const statusLine = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0] ?? "");
  if (!statusLine) throw new MalformedResponseError(`status line ${JSON.stringify(lines[0])}`);
  const headers: Record<string, string | string[]> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0) throw new MalformedResponseError(`header line ${JSON.stringify(line)}`);
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    const seen = headers[name];
    if (seen === undefined) headers[name] = value;
    else headers[name] = Array.isArray(seen) ? [...seen, value] : [seen, value];
  }
  return { status: Number(statusLine[1]), headers, length: end + 4 };
}

/** What a chunk of body bytes held: data to pass on, and whether the body ended. */
export interface Framed {
  data: Buffer[];
  done: boolean;
}

/** Splits a response body out of the bytes that follow its head. */
export interface BodyFramer {
  feed(bytes: Buffer): Framed;
  /** The connection ended: true when that completes the body (close-delimited bodies). */
  endOfInput(): boolean;
  /** Whether the connection can carry another request once the body is done. */
  readonly reusable: boolean;
}

/** The framing RFC 9112 6.3 gives a response to `method` with `head`. */
export function bodyFramer(method: string, head: ResponseHead): BodyFramer {
  const { status, headers } = head;
  const closes = String(headers.connection ?? "")
    .toLowerCase()
    .includes("close");
  if (method === "HEAD" || status === 204 || status === 304 || (status >= 100 && status < 200)) {
    return new LengthFramer(0, !closes);
  }
  const encoding = headers["transfer-encoding"];
  if (encoding !== undefined) {
    if (!String(encoding).toLowerCase().trim().endsWith("chunked")) return new CloseFramer();
    return new ChunkedFramer(!closes);
  }
  const length = headers["content-length"];
  if (length !== undefined) {
    if (Array.isArray(length) || !/^\d+$/.test(length))
      throw new MalformedResponseError(`content-length ${String(length)}`);
    return new LengthFramer(Number(length), !closes);
  }
  return new CloseFramer();
}

class LengthFramer implements BodyFramer {
  constructor(
    private remaining: number,
    readonly reusable: boolean,
  ) {}

  feed(bytes: Buffer): Framed {
    if (bytes.length > this.remaining) throw new MalformedResponseError("bytes after the body");
    this.remaining -= bytes.length;
    return { data: bytes.length > 0 ? [bytes] : [], done: this.remaining === 0 };
  }

  endOfInput(): boolean {
    return this.remaining === 0;
  }
}

class CloseFramer implements BodyFramer {
  readonly reusable = false;

  feed(bytes: Buffer): Framed {
    return { data: bytes.length > 0 ? [bytes] : [], done: false };
  }

  endOfInput(): boolean {
    return true;
  }
}

/** Chunked transfer coding: size line, data, CRLF; a zero size, trailers, CRLF ends it. */
class ChunkedFramer implements BodyFramer {
  private state: "size" | "data" | "data-end" | "trailers" | "done" = "size";
  private line = "";
  private left = 0;

  constructor(readonly reusable: boolean) {}

  feed(bytes: Buffer): Framed {
    const data: Buffer[] = [];
    let at = 0;
    while (at < bytes.length && this.state !== "done") {
      if (this.state === "data") {
        const take = Math.min(this.left, bytes.length - at);
        data.push(bytes.subarray(at, at + take));
        at += take;
        this.left -= take;
        if (this.left === 0) this.state = "data-end";
        continue;
      }
      const newline = bytes.indexOf(0x0a, at);
      const end = newline === -1 ? bytes.length : newline + 1;
      this.line += bytes.subarray(at, end).toString("latin1");
      at = end;
      if (this.line.length > 4096) throw new MalformedResponseError("chunk line too long");
      if (newline === -1) break;
      const line = this.line.replace(/\r?\n$/, "");
      this.line = "";
      this.takeLine(line);
    }
    if (at < bytes.length) throw new MalformedResponseError("bytes after the body");
    return { data, done: this.state === "done" };
  }

  endOfInput(): boolean {
    return this.state === "done";
  }

  private takeLine(line: string): void {
    if (this.state === "data-end") {
      if (line !== "") throw new MalformedResponseError("chunk data overruns its size");
      this.state = "size";
    } else if (this.state === "size") {
      const size = /^([0-9a-fA-F]{1,12})(?:;.*)?$/.exec(line);
      if (!size) throw new MalformedResponseError(`chunk size ${JSON.stringify(line)}`);
      this.left = Number.parseInt(size[1] as string, 16);
      this.state = this.left === 0 ? "trailers" : "data";
    } else if (this.state === "trailers" && line === "") {
      this.state = "done";
    }
  }
}
