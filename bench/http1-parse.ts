// HTTP/1.1 response framing for the raw-socket clients (fast-get.ts, lean-http.ts): the parts
// of a response head that decide where the body ends, and an incremental chunked decoder.

export interface ResponseHead {
  readonly status: number;
  /** Undefined when the head has no Content-Length. */
  readonly contentLength: number | undefined;
  readonly chunked: boolean;
  /** The server will close the connection after this response. */
  readonly close: boolean;
}

const contentLengthPattern = /\r\ncontent-length:[ \t]*(\d+)/i;
const chunkedPattern = /\r\ntransfer-encoding:[^\r]*\bchunked\b/i;
const closePattern = /\r\nconnection:[^\r]*\bclose\b/i;

/** Parses a response head given as latin1 text without the final blank line. */
export function parseHead(text: string): ResponseHead {
  const length = contentLengthPattern.exec(text)?.[1];
  return {
    status: Number(text.slice(9, 12)),
    contentLength: length === undefined ? undefined : Number(length),
    chunked: chunkedPattern.test(text),
    close: closePattern.test(text) || text.startsWith("HTTP/1.0"),
  };
}

/** Whether a response to `method` with `status` can carry a body at all. */
export function mayHaveBody(method: string, status: number): boolean {
  return method !== "HEAD" && status !== 204 && status !== 304 && (status < 100 || status >= 200);
}

/**
 * Incremental decoder of a chunked body: feed it bytes as they come; it hands the payload to
 * `sink` and reports where the body (including the trailer section) ended.
 */
export class ChunkedDecoder {
  private state: "size" | "data" | "dataEnd" | "trailer" = "size";
  private line = "";
  private remaining = 0;

  /**
   * Consumes data[start..]; returns the offset just after the body if it ended inside `data`,
   * or -1 if all of `data` was consumed and more is needed. Throws on a malformed size line.
   */
  feed(data: Uint8Array, start: number, sink: (payload: Uint8Array) => void): number {
    let index = start;
    while (index < data.length) {
      if (this.state === "data") {
        const take = Math.min(this.remaining, data.length - index);
        sink(data.subarray(index, index + take));
        this.remaining -= take;
        index += take;
        if (this.remaining === 0) this.state = "dataEnd";
        continue;
      }
      const byte = data[index++] as number;
      if (byte === 0x0d) continue;
      if (this.state === "dataEnd") {
        if (byte === 0x0a) this.state = "size";
      } else if (byte !== 0x0a) {
        this.line += String.fromCharCode(byte);
      } else if (this.state === "size") {
        const size = Number.parseInt(this.line.split(";")[0]?.trim() ?? "", 16);
        if (Number.isNaN(size)) throw new Error(`bad chunk size line ${JSON.stringify(this.line)}`);
        this.line = "";
        if (size === 0) this.state = "trailer";
        else {
          this.remaining = size;
          this.state = "data";
        }
      } else if (this.line === "") {
        return index;
      } else {
        this.line = "";
      }
    }
    return -1;
  }
}
