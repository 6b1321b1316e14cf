// Raw HTTP for the hostile-input tests. `fetch` normalises paths (`..`, `%2e`), so these
// helpers send the request line exactly as given: through node:http for anything it
// lets through, or as raw bytes over a socket for what no well-behaved client would send.
// Every call has a deadline: a server that stops answering fails the test, never hangs it.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Agent, type IncomingHttpHeaders, request } from "node:http";
import { connect, type Socket } from "node:net";

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface RawRequest {
  method: string;
  /** Sent as is (node:http only refuses characters outside \u0021-\u00ff). */
  path: string;
  headers?: Record<string, string | string[]>;
  body?: Buffer | string | undefined;
  /** Send the body with `Transfer-Encoding: chunked` instead of a Content-Length. */
  chunked?: boolean;
  timeoutMs?: number;
}

export interface Target {
  host: string;
  port: number;
}

export function targetOf(url: string): Target {
  const parsed = new URL(url);
  const host = parsed.hostname;
  assert.ok(host.startsWith("127.") || host === "localhost", `not loopback: ${url}`);
  return { host, port: Number(parsed.port) };
}

/** One keep-alive agent per test file keeps thousands of generated requests cheap. */
export function keepAliveAgent(): Agent {
  return new Agent({ keepAlive: true, maxSockets: 8 });
}

export function rawRequest(
  target: Target,
  options: RawRequest,
  agent?: Agent,
): Promise<RawResponse> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  return new Promise<RawResponse>((resolve, reject) => {
    const headers: Record<string, string | string[]> = { ...options.headers };
    const body =
      typeof options.body === "string" ? Buffer.from(options.body, "utf8") : options.body;
    if (body !== undefined && !options.chunked && !hasHeader(headers, "content-length")) {
      headers["Content-Length"] = String(body.length);
    }
    const req = request({
      host: target.host,
      port: target.port,
      method: options.method,
      path: options.path,
      headers,
      agent: agent ?? false,
      setHost: true,
    });
    const timer = setTimeout(() => {
      req.destroy(new Error(`no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    req.once("error", (error) => {
      clearTimeout(timer);
      reject(
        new Error(`${options.method} ${options.path.slice(0, 200)}: ${error.message}`, {
          cause: error,
        }),
      );
    });
    req.once("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.once("error", (error) => {
        clearTimeout(timer);
        reject(error);
      });
      res.once("end", () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
      });
    });
    if (body !== undefined && options.chunked) {
      // A few chunks, so the server sees a real chunked stream.
      const step = Math.max(1, Math.ceil(body.length / 4));
      for (let at = 0; at < body.length; at += step) req.write(body.subarray(at, at + step));
      req.end();
    } else {
      req.end(body);
    }
  });
}

function hasHeader(headers: Record<string, unknown>, name: string): boolean {
  return Object.keys(headers).some((key) => key.toLowerCase() === name);
}

/** The OCI error codes a 4xx body may carry (the spec's table plus Distribution's extras). */
export const allowedErrorCodes: ReadonlySet<string> = new Set([
  "BLOB_UNKNOWN",
  "BLOB_UPLOAD_INVALID",
  "BLOB_UPLOAD_UNKNOWN",
  "DIGEST_INVALID",
  "MANIFEST_BLOB_UNKNOWN",
  "MANIFEST_INVALID",
  "MANIFEST_UNKNOWN",
  "NAME_INVALID",
  "NAME_UNKNOWN",
  "SIZE_INVALID",
  "UNAUTHORIZED",
  "DENIED",
  "UNSUPPORTED",
  "TOOMANYREQUESTS",
  "RANGE_INVALID",
  "TAG_INVALID",
  "PAGINATION_NUMBER_INVALID",
]);

/**
 * What is wrong with a response to a hostile request, or undefined when nothing is: never
 * a 5xx, and every 4xx (but HEAD's) carries the spec's JSON error body with a known code.
 */
export function responseProblem(method: string, response: RawResponse): string | undefined {
  const { status, body } = response;
  if (status >= 500 || status < 100) return `status ${status}: ${preview(body)}`;
  if (status < 400) return undefined;
  if (method === "HEAD") return body.length === 0 ? undefined : "HEAD answered with a body";
  const error = ociError(response);
  if (typeof error === "string") return `status ${status}: ${error}`;
  return undefined;
}

/** The first error of an OCI error body, or a description of why the body is not one. */
export function ociError(
  response: RawResponse,
): { code: string; message: string; detail: unknown } | string {
  const type = String(response.headers["content-type"] ?? "");
  if (!type.startsWith("application/json")) return `Content-Type ${type || "(none)"}`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(response.body.toString("utf8"));
  } catch {
    return `body is not JSON: ${preview(response.body)}`;
  }
  const errors = (parsed as { errors?: unknown }).errors;
  if (!Array.isArray(errors) || errors.length === 0)
    return `no errors array: ${preview(response.body)}`;
  for (const error of errors as Record<string, unknown>[]) {
    if (typeof error !== "object" || error === null) return "an error is not an object";
    if (typeof error.code !== "string" || !allowedErrorCodes.has(error.code)) {
      return `code ${String(error.code)} is not in the OCI table`;
    }
    if (typeof error.message !== "string") return "message is not a string";
    if (!("detail" in error)) return "no detail";
  }
  return errors[0] as { code: string; message: string; detail: unknown };
}

export function errorCode(response: RawResponse): string | undefined {
  const error = ociError(response);
  return typeof error === "string" ? undefined : error.code;
}

function preview(body: Buffer): string {
  return JSON.stringify(body.subarray(0, 300).toString("utf8"));
}

export function sha256(bytes: Buffer): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** The server still answers `GET /v2/` within a deadline. */
export async function assertAlive(target: Target, what = ""): Promise<void> {
  const response = await rawRequest(target, { method: "GET", path: "/v2/", timeoutMs: 5_000 });
  assert.equal(response.status, 200, `the server stopped answering ${what}`);
}

export interface SocketResponse {
  /** Everything the server sent before it closed the connection or the deadline passed. */
  bytes: Buffer;
  /** The status of the first response line, if any. */
  status: number | undefined;
  closed: boolean;
}

/**
 * Writes `raw` to a fresh connection and collects what comes back until the server closes
 * it, one whole response has arrived (by Content-Length), or `timeoutMs` passes.
 */
export function socketExchange(
  target: Target,
  raw: Buffer | string,
  timeoutMs = 5_000,
): Promise<SocketResponse> {
  return new Promise((resolve) => {
    const socket: Socket = connect(target.port, target.host);
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const bytes = Buffer.concat(chunks);
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(bytes.subarray(0, 16).toString("latin1"));
      resolve({ bytes, status: match ? Number(match[1]) : undefined, closed });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      if (wholeResponse(Buffer.concat(chunks))) finish(false);
    });
    socket.on("error", () => finish(true));
    socket.on("close", () => finish(true));
    socket.write(raw);
  });
}

/**
 * Writes a request head and then `bodyBytes` of body (chunked, or as declared by the head)
 * like a client that sends everything before it reads, then collects the answer. Fails
 * when the server stops reading (the writes never drain) or does not answer in time.
 */
export async function sendWholeBodyThenRead(
  target: Target,
  head: string,
  bodyBytes: number,
  options: { chunked: boolean; timeoutMs?: number },
): Promise<RawResponse> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  const socket: Socket = connect(target.port, target.host);
  const chunks: Buffer[] = [];
  let closed = false;
  socket.on("data", (chunk: Buffer) => chunks.push(chunk));
  socket.on("error", () => undefined);
  socket.on("close", () => {
    closed = true;
  });
  const deadline = Date.now() + timeoutMs;
  const write = (data: Buffer | string) =>
    new Promise<void>((resolve, reject) => {
      if (closed) {
        resolve();
        return;
      }
      const timer = setTimeout(
        () => reject(new Error(`the server stopped reading the body (${timeoutMs} ms)`)),
        Math.max(0, deadline - Date.now()),
      );
      socket.write(data, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  try {
    await write(head);
    const piece = Buffer.alloc(64 * 1024, 0x61);
    for (let sent = 0; sent < bodyBytes && !closed; sent += piece.length) {
      const part = piece.subarray(0, Math.min(piece.length, bodyBytes - sent));
      await write(
        options.chunked
          ? Buffer.concat([
              Buffer.from(`${part.length.toString(16)}\r\n`),
              part,
              Buffer.from("\r\n"),
            ])
          : part,
      );
    }
    if (options.chunked) await write("0\r\n\r\n");
    for (;;) {
      const response = parseSocketResponse(Buffer.concat(chunks));
      const length = Number(response?.headers["content-length"] ?? Number.NaN);
      if (response && response.body.length >= length) {
        return { ...response, body: response.body.subarray(0, length) };
      }
      if (closed)
        throw new Error(
          `closed without a whole answer: ${Buffer.concat(chunks).toString("latin1").slice(0, 200)}`,
        );
      if (Date.now() > deadline) throw new Error(`no answer within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    socket.destroy();
  }
}

function wholeResponse(bytes: Buffer): boolean {
  const end = bytes.indexOf("\r\n\r\n");
  if (end === -1) return false;
  const head = bytes.subarray(0, end).toString("latin1");
  const length = /\r\ncontent-length: *(\d+)/i.exec(head);
  if (!length) {
    const chunked = /\r\ntransfer-encoding: *chunked/i.test(head);
    return chunked && bytes.subarray(bytes.length - 5).toString("latin1") === "0\r\n\r\n";
  }
  return bytes.length - end - 4 >= Number(length[1]);
}

/** Splits a raw HTTP response into its status, lower-cased headers and body. */
export function parseSocketResponse(bytes: Buffer): RawResponse | undefined {
  const end = bytes.indexOf("\r\n\r\n");
  if (end === -1) return undefined;
  const lines = bytes.subarray(0, end).toString("latin1").split("\r\n");
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? "");
  if (!status) return undefined;
  const headers: IncomingHttpHeaders = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0)
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(status[1]), headers, body: bytes.subarray(end + 4) };
}
