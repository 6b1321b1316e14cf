// The HTTP front of one replica: parses the request line, finds the handler, and writes
// every failure as an OCI error. Each request gets an id (the client's X-Request-Id when
// it sends a sane one) that is echoed back and carried by every log line.
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { Logger } from "pino";
import { OciError } from "../oci/oci-error.ts";
import { parseRepositoryName } from "../oci/reference.ts";
import type { Registry } from "../registry/registry.ts";
import { ClientAddresses } from "./client-address.ts";
import { handlerTable } from "./handler-table.ts";
import type { AccessCheck, RequestContext } from "./request-context.ts";
import { sendError } from "./responses.ts";
import { matchRoute, type RouteMatch } from "./routes.ts";
import { UploadLimiter } from "./upload-limiter.ts";

const allowAll: AccessCheck = () => true;

/**
 * Endpoints outside the Distribution API (replication feeds, admin, metrics) plug in by
 * path prefix, so that the core never imports them. They throw OciError like handlers.
 */
export interface ApiExtension {
  /** e.g. "/_meridian/replication/" */
  prefix: string;
  handle(req: IncomingMessage, res: ServerResponse, ctx: ExtensionContext): Promise<void>;
}

export interface ExtensionContext {
  requestId: string;
  log: Logger;
  query: URLSearchParams;
  path: string;
  signal: AbortSignal;
  /** The client's address (behind a trusted proxy, the one it forwarded), for limits. */
  client: string;
}

/** Checks a request against the caller's permissions (authentication lives outside the core). */
export interface RequestAuthorizer {
  /**
   * Throws an OciError (401/403, or 429 for a client failing logins) unless allowed;
   * returns what else the caller may do. `client` is the client's address.
   */
  authorize(req: IncomingMessage, route: RouteMatch, client: string): Promise<AccessCheck>;
}

export interface ApiServerOptions {
  registry: Registry;
  log: Logger;
  /** Absent: every request is allowed (a loopback registry without users). */
  authorizer?: RequestAuthorizer | undefined;
  extensions?: ApiExtension[];
  /** Certificate and key (PEM): the server speaks HTTPS. */
  tls?: { cert: Buffer; key: Buffer } | undefined;
  /** Milliseconds a client may take to send its request headers (slow-loris guard). */
  headersTimeoutMs?: number;
  /** Milliseconds a connection may stay idle between requests. */
  keepAliveTimeoutMs?: number;
  /** Milliseconds a socket may go without any byte in either direction (a stalled body). */
  idleTimeoutMs?: number;
  /** Milliseconds a whole request may take to arrive (0: no limit). */
  requestTimeoutMs?: number;
  /** Requests streaming an upload body at once from one client address. */
  uploadsPerClient?: number;
  /**
   * The limiter to count uploads in; share one between the server and a handler hosted in
   * the same replica. Default: one of its own per createApiHandler call.
   */
  uploadLimiter?: UploadLimiter;
  /** Proxies (CIDRs) whose X-Forwarded-For names the client. */
  trustedProxies?: readonly string[];
}

const requestIdPattern = /^[A-Za-z0-9._-]{1,128}$/;
const maxUrlLength = 8192;

/**
 * The request handler of a replica's API, apart from any listener: the server below uses
 * it, and a global endpoint hosted in the same process hands it the requests it routes to
 * this replica (no second hop).
 */
export function createApiHandler(
  options: ApiServerOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
  const instance: ServerInstance = {
    ...options,
    uploads: options.uploadLimiter ?? new UploadLimiter(options.uploadsPerClient ?? 64),
    clients: new ClientAddresses(options.trustedProxies ?? []),
  };
  return (req, res) => void handleRequest(req, res, instance);
}

/** The options with the state that belongs to one server instance. */
interface ServerInstance extends ApiServerOptions {
  uploads: UploadLimiter;
  clients: ClientAddresses;
}

export function createApiServer(options: ApiServerOptions): Server {
  const headersTimeout = options.headersTimeoutMs ?? 30_000;
  const settings = {
    maxHeaderSize: 16 * 1024,
    // Checked in handleRequest instead, so that the answer carries the spec's error body.
    requireHostHeader: false,
    requestTimeout: options.requestTimeoutMs ?? 0,
    headersTimeout,
    // Node checks these timeouts on this interval (30 s by default): check often enough
    // that a slow-loris client is cut off close to the configured time.
    connectionsCheckingInterval: Math.min(1000, headersTimeout),
  };
  const onRequest = createApiHandler(options);
  const server = options.tls
    ? createHttpsServer({ ...settings, cert: options.tls.cert, key: options.tls.key }, onRequest)
    : createServer(settings, onRequest);
  server.keepAliveTimeout = options.keepAliveTimeoutMs ?? 65_000;
  // An Expect other than 100-continue, and CONNECT (this is no proxy), get OCI errors too.
  server.on("checkExpectation", (_req: IncomingMessage, res: ServerResponse) => {
    const body = JSON.stringify({
      errors: [{ code: "UNSUPPORTED", message: "expectation failed", detail: {} }],
    });
    res.writeHead(417, {
      "Content-Type": "application/json",
      "Content-Length": String(Buffer.byteLength(body)),
      Connection: "close",
    });
    res.end(body);
  });
  server.on("connect", (_req: IncomingMessage, socket: import("node:stream").Duplex) => {
    const body = JSON.stringify({
      errors: [{ code: "UNSUPPORTED", message: "CONNECT is not supported", detail: {} }],
    });
    socket.end(
      `HTTP/1.1 405 Method Not Allowed\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
  // Requests Node's parser rejects (bad characters, oversized headers) still get the spec's
  // error body rather than a bare status line.
  server.on("clientError", (error: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const [status, reason, message] =
      error.code === "HPE_HEADER_OVERFLOW"
        ? [431, "Request Header Fields Too Large", "request headers too large"]
        : error.code === "ERR_HTTP_REQUEST_TIMEOUT"
          ? [408, "Request Timeout", "the request took too long to arrive"]
          : [400, "Bad Request", "malformed request"];
    const body = JSON.stringify({ errors: [{ code: "UNSUPPORTED", message, detail: {} }] });
    // The answer, then the socket goes: a client still trickling bytes must not keep it.
    socket.write(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      () => socket.destroy(),
    );
  });
  // A client that stops sending mid-body (or a slow-loris trickle) loses its socket.
  server.setTimeout(options.idleTimeoutMs ?? 120_000, (socket) => socket.destroy());
  return server;
}

async function handleRequest(
  req: IncomingMessage,
  res: ServerResponse,
  options: ServerInstance,
): Promise<void> {
  const started = process.hrtime.bigint();
  const incomingId = req.headers["x-request-id"];
  const requestId =
    typeof incomingId === "string" && requestIdPattern.test(incomingId) ? incomingId : randomUUID();
  const log = options.log.child({ requestId });
  res.setHeader("X-Request-Id", requestId);
  res.setHeader("Docker-Distribution-API-Version", "registry/2.0");
  const aborter = new AbortController();
  res.once("close", () => {
    if (!res.writableFinished) aborter.abort();
  });
  const url = req.url ?? "/";
  const method = req.method ?? "GET";
  try {
    if (
      req.httpVersionMajor === 1 &&
      req.httpVersionMinor === 1 &&
      req.headers.host === undefined
    ) {
      throw new OciError(
        "UNSUPPORTED",
        { reason: "HTTP/1.1 requires a Host header" },
        { status: 400 },
      );
    }
    if (url.length > maxUrlLength)
      throw new OciError("NAME_INVALID", { reason: "URL too long" }, { status: 414 });
    const queryAt = url.indexOf("?");
    const path = queryAt === -1 ? url : url.slice(0, queryAt);
    const query = new URLSearchParams(queryAt === -1 ? "" : url.slice(queryAt + 1));
    const extension = options.extensions?.find((e) => path.startsWith(e.prefix));
    if (extension) {
      await extension.handle(req, res, {
        requestId,
        log,
        query,
        path,
        signal: aborter.signal,
        client: options.clients.of(req),
      });
      return;
    }
    const routed = matchRoute(method, path);
    if (routed.kind === "not-found")
      throw new OciError("NAME_UNKNOWN", { path: path.slice(0, 256) }, { status: 404 });
    if (routed.kind === "method-not-allowed") {
      throw new OciError(
        "UNSUPPORTED",
        { method },
        { headers: { Allow: routed.allow.join(", ") } },
      );
    }
    const handler = handlerTable[routed.match.route][method];
    if (!handler) throw new OciError("UNSUPPORTED", { method });
    // Names are checked before anything quotes them (an authorization challenge does).
    if (routed.match.route !== "base" && routed.match.route !== "catalog") {
      parseRepositoryName(routed.match.name);
    }
    const client = options.clients.of(req);
    const access = options.authorizer
      ? await options.authorizer.authorize(req, routed.match, client)
      : allowAll;
    const release = options.uploads.admit(req, routed.match.route, client);
    const ctx: RequestContext = {
      req,
      res,
      match: routed.match,
      query,
      requestId,
      log,
      registry: options.registry,
      signal: aborter.signal,
      access,
    };
    try {
      await handler(ctx);
    } finally {
      release();
    }
  } catch (error) {
    if (aborter.signal.aborted) {
      log.debug({ err: error }, "client went away");
    } else {
      sendError(res, error, requestId, log);
    }
  } finally {
    if (log.isLevelEnabled("debug")) {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      log.debug({ method, url, status: res.statusCode, ms }, "request");
    }
  }
}
