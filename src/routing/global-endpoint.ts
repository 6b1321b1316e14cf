// The global endpoint: one registry name in front of every replica. This is its HTTP
// front, which puts the parts together for each request: the router picks the replicas
// (request-router.ts), a request for the replica in this process is served in-process
// (local-replica.ts), the others are proxied (replica-proxy.ts) or, in redirect mode, blob
// reads are answered with 307 to the chosen regional endpoint.
import { createServer, IncomingMessage, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import { Counter, type Registry } from "prom-client";
import { listenOn } from "../config/listen-address.ts";
import type { ClientLocator } from "./client-location.ts";
import { sendEndpointError, servedHeader } from "./endpoint-answer.ts";
import type { HealthMonitor } from "./health-monitor.ts";
import { EndpointResponse, type LocalReplica, serveLocally } from "./local-replica.ts";
import { ReplicaProxy } from "./replica-proxy.ts";
import type { RankingMode, RoutableReplica } from "./replica-ranking.ts";
import { isRead, RequestRouter, type RoutingPolicy } from "./request-router.ts";

export type RoutingMode = "proxy" | "redirect";

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

const blobRead = /^\/v2\/.+\/blobs\/(?!uploads\/)[^/]+$/;

export class GlobalEndpoint {
  private readonly router: RequestRouter;
  private readonly proxy: ReplicaProxy;
  private readonly requests: Counter<"client_region" | "replica">;

  private constructor(
    private readonly options: GlobalEndpointOptions,
    private readonly server: Server<typeof IncomingMessage, typeof EndpointResponse>,
    readonly url: string,
  ) {
    this.router = new RequestRouter(options);
    this.proxy = new ReplicaProxy({ monitor: options.monitor, log: options.log });
    this.requests = new Counter({
      name: "meridian_global_requests_total",
      help: "Requests through the global endpoint, by client region and serving replica",
      labelNames: ["client_region", "replica"],
      registers: [options.metrics],
    });
  }

  /** Listens and serves. Throws ListenError. */
  static async start(options: GlobalEndpointOptions): Promise<GlobalEndpoint> {
    // Every response is an EndpointResponse, which can carry an in-process answer.
    const settings = {
      keepAliveTimeout: 65_000,
      IncomingMessage,
      ServerResponse: EndpointResponse,
    };
    const server = options.tls
      ? createHttpsServer({ ...settings, cert: options.tls.cert, key: options.tls.key })
      : createServer(settings);
    await listenOn(server, options.host, options.port);
    const address = server.address() as AddressInfo;
    const scheme = options.tls ? "https" : "http";
    // An IPv6 host goes in brackets, or the URL is not one.
    const host = options.host.includes(":") ? `[${options.host}]` : options.host;
    const endpoint = new GlobalEndpoint(options, server, `${scheme}://${host}:${address.port}`);
    server.on("request", (req, res) => void endpoint.handle(req, res));
    return endpoint;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    this.proxy.close();
  }

  private async handle(req: IncomingMessage, res: EndpointResponse): Promise<void> {
    if (req.url === "/metrics") {
      const body = await this.options.metrics.metrics();
      res.writeHead(200, { "Content-Type": this.options.metrics.contentType });
      res.end(body);
      return;
    }
    const route = this.router.route(req);
    let candidates = route.candidates;
    if (candidates.length === 0) {
      sendEndpointError(res, 503, "UNAVAILABLE", "no healthy replica can serve this request");
      return;
    }
    const local = this.options.local;
    if (local && candidates[0]?.region === local.region) {
      // A read that the replica here fails with a 5xx goes on to the others, as a
      // proxied one would; anything else is answered here whatever it says.
      const others = isRead(req) ? candidates.slice(1) : [];
      const outcome = await serveLocally(req, res, local, {
        path: route.path,
        holdErrors: others.length > 0,
      });
      if (outcome === "done") {
        this.count(route.clientRegion, local.region);
        return;
      }
      this.options.monitor.reportFailure(local.region);
      candidates = others;
    }
    const first = candidates[0] as RoutableReplica;
    const method = req.method ?? "GET";
    if (
      this.options.mode === "redirect" &&
      (method === "GET" || method === "HEAD") &&
      blobRead.test(route.path.split("?")[0] ?? "")
    ) {
      this.count(route.clientRegion, first.region);
      res.writeHead(307, {
        Location: `${first.url}${route.path}`,
        [servedHeader]: first.region,
        "Content-Length": "0",
      });
      res.end();
      return;
    }
    const served = await this.proxy.proxy(req, res, route.path, candidates);
    if (served !== undefined) this.count(route.clientRegion, served);
  }

  private count(clientRegion: string | undefined, replica: string): void {
    this.requests.inc({ client_region: clientRegion ?? "unknown", replica });
  }
}
