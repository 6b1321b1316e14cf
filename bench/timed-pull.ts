// Timed blob pulls: `parallel` GETs at once, each over a raw socket whose body is read into
// one reused 1 MiB buffer and only counted (Content-Length, chunked, or read-to-close
// framing). In redirect mode a GET answered 307 is followed by a GET of its Location; both
// requests are timed. Runs in the client worker thread (client-thread.ts), so that the
// client never shares an event loop with a server in the bench process (the global
// endpoint) and its own busyness can be reported.
//
// Why not undici (bench/README.md has the table): 256 MiB pulls from Meridian on the 2-core
// VM, this reader and undici 7 interleaved in one run, 3 repetitions, medians (ranges):
//   1 GET:  this reader 1,224 MB/s (1,182-1,309), client busy 30%; undici request() with the
//           body iterated and dropped 320 MB/s (221-477), busy 98%. A second run after a
//           warm-up pull of each: 1,025 (829-1,340) against 306 (241-361), and undici
//           stream() into a discarding Writable 372 (347-513), busy 100%.
//   4 GETs: 1,381 (1,339-1,533), busy 34%, against 561 (477-688), busy 100%; second run
//           1,153 (666-1,264) against 458 (383-475) and stream() 474 (364-530).
// A third run with undici's dispatch() and a handler that only counts: 367-553 MB/s at
// 92-97% busy, against 963-1,393 here. undici copies every chunk through its parser, so it
// would make the client the bottleneck of the pull figures.
import net from "node:net";
import { performance } from "node:perf_hooks";

export interface PullJob {
  /** Absolute URL of the blob (regional endpoint or global endpoint). */
  readonly url: string;
  readonly expectBytes: number;
  /** Expect 307 from `url`, then GET the Location. */
  readonly followRedirect: boolean;
  /** GETs of the blob at once (default 1). */
  readonly parallel?: number;
}

export interface PullOutcome {
  /** From the first request sent to the last body byte of every GET received. */
  readonly ms: number;
  /** Time of the request answered 307 (redirect jobs only). */
  readonly redirectMs?: number;
  /** The Location followed (redirect jobs only). */
  readonly location?: string;
  /** Event-loop utilisation of the client thread during the pull (0..1). */
  readonly clientUtilization: number;
}

interface Answer {
  readonly status: number;
  readonly location: string | undefined;
  readonly bodyBytes: number;
  /** Start of the body when the status is not 200 (for error messages). */
  readonly errorBody: string;
}

const readBufferBytes = 1024 * 1024;
const maxHeadBytes = 64 * 1024;
const idleTimeoutMs = 60_000;

/**
 * Incremental decoder of a chunked body: hands the payload to `sink` and returns the offset
 * just after the body (trailers included) if it ended inside `data`, or -1 if more is needed.
 */
function chunkedDecoder(): (
  data: Uint8Array,
  start: number,
  sink: (part: Uint8Array) => void,
) => number {
  let state: "size" | "data" | "dataEnd" | "trailer" = "size";
  let line = "";
  let remaining = 0;
  return (data, start, sink) => {
    let index = start;
    while (index < data.length) {
      if (state === "data") {
        const take = Math.min(remaining, data.length - index);
        sink(data.subarray(index, index + take));
        remaining -= take;
        index += take;
        if (remaining === 0) state = "dataEnd";
        continue;
      }
      const byte = data[index++] as number;
      if (byte === 0x0d) continue;
      if (state === "dataEnd") {
        if (byte === 0x0a) state = "size";
      } else if (byte !== 0x0a) {
        line += String.fromCharCode(byte);
      } else if (state === "size") {
        const size = Number.parseInt(line.split(";")[0]?.trim() ?? "", 16);
        if (Number.isNaN(size)) throw new Error(`bad chunk size line ${JSON.stringify(line)}`);
        line = "";
        if (size === 0) state = "trailer";
        else {
          remaining = size;
          state = "data";
        }
      } else if (line === "") {
        return index;
      } else {
        line = "";
      }
    }
    return -1;
  };
}

/** One GET on a fresh connection (Connection: close), body counted. */
function get(url: URL): Promise<Answer> {
  const path = `${url.pathname}${url.search}`;
  return new Promise((resolve, reject) => {
    let head: Buffer = Buffer.alloc(0);
    let inBody = false;
    let status = 0;
    let location: string | undefined;
    let framing: "length" | "chunked" | "close" = "close";
    let contentLength = 0;
    let bodyBytes = 0;
    let errorBody = "";
    let settled = false;
    const chunked = chunkedDecoder();
    const finish = (error?: Error): void => {
      if (settled) return;
      settled = true;
      socket.destroy();
      if (error) reject(new Error(`GET ${url.href}: ${error.message}`));
      else resolve({ status, location, bodyBytes, errorBody: errorBody.replace(/\s+/g, " ") });
    };
    const count = (data: Uint8Array): void => {
      bodyBytes += data.length;
      if (status !== 200 && errorBody.length < 300) errorBody += Buffer.from(data).toString();
    };
    const feedBody = (data: Buffer, start: number): void => {
      if (start >= data.length) return;
      if (framing === "chunked") {
        try {
          if (chunked(data, start, count) >= 0) finish();
        } catch (error) {
          finish(error as Error);
        }
      } else if (framing === "length") {
        count(data.subarray(start, start + contentLength - bodyBytes));
        if (bodyBytes >= contentLength) finish();
      } else {
        count(data.subarray(start));
      }
    };
    const readHead = (data: Buffer): void => {
      head = Buffer.concat([head, data]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) {
        if (head.length > maxHeadBytes) finish(new Error("response head too large"));
        return;
      }
      const text = head.toString("latin1", 0, end);
      const header = (name: string) =>
        new RegExp(`\\r\\n${name}:[ \\t]*([^\\r]*)`, "i").exec(text)?.[1]?.trim();
      status = Number(text.slice(9, 12));
      location = header("location");
      const length = header("content-length");
      if (/\bchunked\b/i.test(header("transfer-encoding") ?? "")) framing = "chunked";
      else if (length !== undefined) {
        framing = "length";
        contentLength = Number(length);
      }
      inBody = true;
      if (framing === "length" && contentLength === 0) finish();
      else feedBody(head, end + 4);
    };
    const socket = net.connect({
      host: url.hostname,
      port: Number(url.port),
      noDelay: true,
      onread: {
        buffer: Buffer.allocUnsafe(readBufferBytes),
        callback(bytesRead: number, buffer: Uint8Array): boolean {
          const data = Buffer.from(buffer.buffer, buffer.byteOffset, bytesRead);
          if (inBody) feedBody(data, 0);
          else readHead(data);
          return true;
        },
      },
    });
    socket.setTimeout(idleTimeoutMs, () => finish(new Error(`no data for ${idleTimeoutMs} ms`)));
    socket.on("error", (error) => finish(error));
    socket.on("end", () => {
      if (inBody && framing === "close") finish();
      else finish(new Error(`connection closed after ${bodyBytes} body bytes`));
    });
    socket.on("connect", () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${url.host}\r\nConnection: close\r\n\r\n`);
    });
  });
}

/** Runs one pull in the calling thread; throws on any unexpected answer. */
export async function timedPull(job: PullJob): Promise<PullOutcome> {
  const utilizationStart = performance.eventLoopUtilization();
  const started = performance.now();
  let target = new URL(job.url);
  let redirectMs: number | undefined;
  let location: string | undefined;
  if (job.followRedirect) {
    const first = await get(target);
    redirectMs = performance.now() - started;
    location = first.location;
    if (first.status !== 307 || location === undefined) {
      throw new Error(
        `GET ${job.url} -> HTTP ${first.status}${location ? ` Location ${location}` : " without Location"}, expected 307 with a Location: ${first.errorBody}`,
      );
    }
    target = new URL(location, target);
  }
  const replies = await Promise.all(Array.from({ length: job.parallel ?? 1 }, () => get(target)));
  const ms = performance.now() - started;
  for (const reply of replies) {
    if (reply.status !== 200 || reply.bodyBytes !== job.expectBytes) {
      throw new Error(
        `GET ${target.href}${location ? ` (Location of ${job.url})` : ""} -> HTTP ${reply.status}, ${reply.bodyBytes} body bytes, expected 200 with ${job.expectBytes}: ${reply.errorBody}`,
      );
    }
  }
  return {
    ms,
    ...(redirectMs !== undefined ? { redirectMs } : {}),
    ...(location !== undefined ? { location } : {}),
    clientUtilization: performance.eventLoopUtilization(utilizationStart).utilization,
  };
}
