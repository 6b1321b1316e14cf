// Routing decisions of the global endpoint: which replicas may serve a request, best
// first. Where the client is (ClientLocator), the healthy replicas whose routing is
// enabled ranked by distance or measured latency (HealthMonitor, rankReplicas), and sticky
// uploads: a request of an upload session goes to the replica that owns it and nowhere
// else. Nothing here sends a byte.
import type { IncomingMessage } from "node:http";
import type { ClientLocator } from "./client-location.ts";
import type { HealthMonitor } from "./health-monitor.ts";
import { type RankingMode, type RoutableReplica, rankReplicas } from "./replica-ranking.ts";
import { readPin } from "./sticky-upload.ts";

/** Reorders the candidates of a request (tests use it to send each request elsewhere). */
export type RoutingPolicy = (
  candidates: RoutableReplica[],
  req: IncomingMessage,
) => RoutableReplica[];

export interface RequestRouterOptions {
  monitor: HealthMonitor;
  locator: ClientLocator;
  ranking: RankingMode;
  policy?: RoutingPolicy | undefined;
}

export interface Route {
  /** The client's region when it is known by name (the metrics' label). */
  clientRegion: string | undefined;
  /** Path and query for the replica: the request's, without the sticky parameter. */
  path: string;
  /** The replicas that may serve the request, best first; empty when none can. */
  candidates: RoutableReplica[];
}

export class RequestRouter {
  constructor(private readonly options: RequestRouterOptions) {}

  route(req: IncomingMessage): Route {
    const location = this.options.locator.locate(req.socket.remoteAddress, req.headers);
    const pin = readPin(req.url ?? "/");
    const replicas = this.options.monitor.replicas();
    let candidates: RoutableReplica[];
    if (pin.region !== undefined) {
      const owner = replicas.find((r) => r.region === pin.region);
      candidates = owner ? [owner] : [];
    } else {
      candidates = rankReplicas(replicas, location.coordinates, this.options.ranking);
      if (this.options.policy) candidates = this.options.policy(candidates, req);
    }
    return { clientRegion: location.region, path: pin.url, candidates };
  }
}

/** A GET or HEAD without a body: safe to send again to another replica. */
export function isRead(req: IncomingMessage): boolean {
  return (req.method === "GET" || req.method === "HEAD") && !hasBody(req);
}

/** Whether the request carries a body (which cannot be sent twice). */
export function hasBody(req: IncomingMessage): boolean {
  const length = req.headers["content-length"];
  if (length !== undefined) return length !== "0";
  return req.headers["transfer-encoding"] !== undefined;
}
