// The global endpoint: one registry name in front of every replica. Each request goes to
// the nearest healthy replica whose routing is enabled; idempotent reads fail over to the
// next replica within the same request; upload sessions stay with the replica that owns
// them. Proxy mode streams bytes through (nothing is buffered); redirect mode answers blob
// reads with 307 to the chosen regional endpoint. An endpoint hosted in a replica's process
// hands the requests it routes to that replica straight to its API handler.
import {
  Agent,
  createServer,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
} from "node:http";
import {
  createServer as createHttpsServer,
  Agent as HttpsAgent,
  request as httpsRequest,
} from "node:https";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import { Counter, type Registry } from "prom-client";
import type { ClientLocator } from "./client-location.ts";
import type { HealthMonitor } from "./health-monitor.ts";
import { ReadRelay } from "./read-relay.ts";
import { type RankingMode, type RoutableReplica, rankReplicas } from "./replica-ranking.ts";
import { pinLocation, readPin } from "./sticky-upload.ts";

export type RoutingMode = "proxy" | "redirect";

/** Reorders the candidates of a request (tests use it to send each request elsewhere). */
export type RoutingPolicy = (
  candidates: RoutableReplica[],
  req: IncomingMessage,
) => RoutableReplica[];

export interface GlobalEndpointOptions {
  host: string;
  port: number;
  monitor: HealthMonitor;
  locator: ClientLocator;
  mode: RoutingMode;
  ranking: RankingMode;
  metrics: Registry;
  log: Logger;
  policy?: RoutingPolicy | undefined;
  /** Certificate and key (PEM): the endpoint speaks HTTPS. */
  tls?: { cert: Buffer; key: Buffer } | undefined;
  /** The replica whose process hosts this endpoint: its requests are handled in-process. */
  local?: LocalReplica | undefined;
}

/** A replica in the endpoint's own process, reached by calling its API handler. */
export interface LocalReplica {
  region: string;
  handle(req: IncomingMessage, res: ServerResponse): void;
}

const servedHeader = "X-Meridian-Replica";
const blobRead = /^\/v2\/.+\/blobs\/(?!uploads\/)[^/]+$/;
const hopByHop = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "trailer",
]);

export class GlobalEndpoint {
  private readonly agents = new Map<string, Agent>();
  private readonly reads = new ReadRelay();
  private readonly requests: Counter<"client_region" | "replica">;

  private constructor(
    private readonly options: GlobalEndpointOptions,
    private readonly server: Server,
    readonly url: string,
  ) {
    this.requests = new Counter({
      name: "meridian_global_requests_total",
      help: "Requests through the global endpoint, by client region and serving replica",
      labelNames: ["client_region", "replica"],
      registers: [options.metrics],
    });
  }

  static async start(options: GlobalEndpointOptions): Promise<GlobalEndpoint> {
    const server = options.tls
      ? createHttpsServer({
          keepAliveTimeout: 65_000,
          cert: options.tls.cert,
          key: options.tls.key,
        })
      : createServer({ keepAliveTimeout: 65_000 });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port, options.host, () => resolve());
    });
    const address = server.address() as AddressInfo;
    const scheme = options.tls ? "https" : "http";
    const endpoint = new GlobalEndpoint(
      options,
      server,
      `${scheme}://${options.host}:${address.port}`,
    );
    server.on("request", (req, res) => void endpoint.handle(req, res));
    return endpoint;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    for (const agent of this.agents.values()) agent.destroy();
    this.reads.close();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? "/";
    if (url === "/metrics") {
      const body = await this.options.metrics.metrics();
      res.writeHead(200, { "Content-Type": this.options.metrics.contentType });
      res.end(body);
      return;
    }
    const location = this.options.locator.locate(req.socket.remoteAddress, req.headers);
    const pin = readPin(url);
    const replicas = this.options.monitor.replicas();
    let candidates: RoutableReplica[];
    if (pin.region !== undefined) {
      const owner = replicas.find((r) => r.region === pin.region);
      candidates = owner ? [owner] : [];
    } else {
      candidates = rankReplicas(replicas, location.coordinates, this.options.ranking);
      if (this.options.policy) candidates = this.options.policy(candidates, req);
    }
    if (candidates.length === 0) {
      sendError(res, 503, "UNAVAILABLE", "no healthy replica can serve this request");
      return;
    }
    const method = req.method ?? "GET";
    const local = this.options.local;
    if (local && candidates[0]?.region === local.region) {
      // A read that the replica here fails with a 5xx goes on to the others, as a
      // proxied one would; anything else is answered here whatever it says.
      const others =
        (method === "GET" || method === "HEAD") && !hasBody(req) ? candidates.slice(1) : [];
      const outcome = await serveLocally(req, res, local, pin.url, others.length > 0);
      if (outcome === "done") {
        this.count(location.region, local.region);
        return;
      }
      this.options.monitor.reportFailure(local.region);
      candidates = others;
    }
    const first = candidates[0] as RoutableReplica;
    if (
      this.options.mode === "redirect" &&
      (method === "GET" || method === "HEAD") &&
      blobRead.test(pin.url.split("?")[0] ?? "")
    ) {
      this.count(location.region, first.region);
      res.writeHead(307, {
        Location: `${first.url}${pin.url}`,
        [servedHeader]: first.region,
        "Content-Length": "0",
      });
      res.end();
      return;
    }
    // Reads are retried on the next replica; writes only when nothing of them was sent.
    const retryable = method === "GET" || method === "HEAD" || !hasBody(req);
    const attempts = retryable ? candidates : [first];
    for (const [index, replica] of attempts.entries()) {
      const last = index === attempts.length - 1;
      const outcome = await this.forward(req, res, replica, pin.url, last || !retryable);
      if (outcome === "done") {
        this.options.monitor.reportSuccess(replica.region);
        this.count(location.region, replica.region);
        return;
      }
      this.options.monitor.reportFailure(replica.region);
    }
    if (!res.headersSent) sendError(res, 502, "UNAVAILABLE", "no replica answered");
  }

  /**
   * Forwards one request. "retry" when the replica could not be reached or answered 5xx
   * and the caller may try the next one (nothing was sent to the client then).
   */
  private async forward(
    req: IncomingMessage,
    res: ServerResponse,
    replica: RoutableReplica,
    path: string,
    final: boolean,
  ): Promise<"done" | "retry"> {
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined && !hopByHop.has(name)) headers[name] = value;
    }
    const forwardedFor = req.socket.remoteAddress ?? "";
    headers["x-forwarded-for"] = headers["x-forwarded-for"]
      ? `${headers["x-forwarded-for"]}, ${forwardedFor}`
      : forwardedFor;
    const method = req.method;
    if ((method === "GET" || method === "HEAD") && !hasBody(req)) {
      try {
        return await this.reads.relay({
          origin: replica.url,
          method,
          path,
          headers,
          res,
          final,
          answerHeaders: (head) => answerHeaders(head.headers, replica.region),
        });
      } catch (error) {
        this.options.log.warn({ replica: replica.region, err: error }, "forwarding failed");
        sendError(res, 502, "UNAVAILABLE", `replica ${replica.region} failed`);
        return "done";
      }
    }
    return this.forwardWithBody(req, res, replica, path, headers, final);
  }

  /** Forwards a request with a body (uploads, manifest PUTs) through Node's client. */
  private forwardWithBody(
    req: IncomingMessage,
    res: ServerResponse,
    replica: RoutableReplica,
    path: string,
    headers: Record<string, string | string[]>,
    final: boolean,
  ): Promise<"done" | "retry"> {
    return new Promise((resolve) => {
      const upstream = (replica.url.startsWith("https:") ? httpsRequest : request)(
        `${replica.url}${path}`,
        {
          method: req.method,
          headers,
          agent: this.agent(replica.url),
        },
      );
      upstream.on("response", (answer) => {
        const status = answer.statusCode ?? 502;
        if (status >= 500 && !final) {
          answer.resume();
          resolve("retry");
          return;
        }
        res.writeHead(status, answerHeaders(answer.headers, replica.region));
        answer.pipe(res);
        answer.on("end", () => resolve("done"));
        answer.on("error", () => {
          res.destroy();
          resolve("done");
        });
      });
      upstream.on("error", (error) => {
        if (!final && !res.headersSent) {
          resolve("retry");
          return;
        }
        this.options.log.warn({ replica: replica.region, err: error }, "forwarding failed");
        if (!res.headersSent)
          sendError(res, 502, "UNAVAILABLE", `replica ${replica.region} failed`);
        else res.destroy();
        resolve("done");
      });
      res.on("close", () => {
        if (!res.writableFinished) upstream.destroy();
      });
      if (req.readableEnded || req.method === "GET" || req.method === "HEAD") upstream.end();
      else req.pipe(upstream);
    });
  }

  private agent(url: string): Agent {
    let agent = this.agents.get(url);
    if (!agent) {
      agent = url.startsWith("https:")
        ? new HttpsAgent({ keepAlive: true, maxSockets: 256 })
        : new Agent({ keepAlive: true, maxSockets: 256 });
      this.agents.set(url, agent);
    }
    return agent;
  }

  private count(clientRegion: string | undefined, replica: string): void {
    this.requests.inc({ client_region: clientRegion ?? "unknown", replica });
  }
}

/**
 * Hands a request to the replica in this process: no second hop, no copy of the bytes.
 * The answer is marked and its upload Location pinned exactly as a proxied one would be.
 * With `divertErrors`, a 5xx answer is held back instead ("retry"): nothing of it reaches
 * the client, and the response is left clean for another replica's answer.
 */
function serveLocally(
  req: IncomingMessage,
  res: ServerResponse,
  local: LocalReplica,
  path: string,
  divertErrors: boolean,
): Promise<"done" | "retry"> {
  return new Promise((resolve) => {
    req.url = path;
    res.setHeader(servedHeader, local.region);
    const original = { writeHead: res.writeHead, write: res.write, end: res.end };
    const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse;
    const pinned = (...args: unknown[]): ServerResponse => {
      if (divertErrors && typeof args[0] === "number" && args[0] >= 500) {
        divert();
        return res;
      }
      const set = res.getHeader("location");
      if (typeof set === "string") res.setHeader("location", pinLocation(set, local.region));
      for (const headers of args.slice(1)) {
        if (!isHeaderObject(headers)) continue;
        for (const [name, value] of Object.entries(headers)) {
          if (name.toLowerCase() === "location" && typeof value === "string")
            headers[name] = pinLocation(value, local.region);
        }
      }
      return writeHead(...args);
    };
    // The replica's error body is swallowed; its end hands the response back, clean.
    const divert = () => {
      res.write = (() => true) as ServerResponse["write"];
      res.end = ((..._args: unknown[]) => {
        Object.assign(res, original);
        for (const name of res.getHeaderNames()) res.removeHeader(name);
        res.statusCode = 200;
        resolve("retry");
        return res;
      }) as ServerResponse["end"];
    };
    res.writeHead = pinned as ServerResponse["writeHead"];
    res.once("finish", () => resolve("done"));
    res.once("close", () => resolve("done"));
    local.handle(req, res);
  });
}

function isHeaderObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A replica's answer headers as the client gets them: marked, upload Location pinned. */
function answerHeaders(
  headers: Record<string, string | string[] | undefined>,
  region: string,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !hopByHop.has(name)) out[name] = value;
  }
  const location = headers.location;
  if (typeof location === "string") out.location = pinLocation(location, region);
  out[servedHeader.toLowerCase()] = region;
  return out;
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers["content-length"];
  if (length !== undefined) return length !== "0";
  return req.headers["transfer-encoding"] !== undefined;
}

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  const body = JSON.stringify({ errors: [{ code, message, detail: {} }] });
  res.writeHead(status, {
    "Content-Type": "application/json",
    "Content-Length": String(Buffer.byteLength(body)),
  });
  res.end(body);
}
