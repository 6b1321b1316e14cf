// GET /_meridian/status: this replica's region, role and replication status, computed
// from real data. The CLI and the home replica read it to list the replications.
import type { ApiExtension } from "../api/api-server.ts";
import { readBody } from "../api/request-body.ts";
import { sendJson } from "../api/responses.ts";
import type { Authorizer } from "../auth/authorizer.ts";
import type { Config } from "../config/config-schema.ts";
import { OciError } from "../oci/oci-error.ts";
import type { Replicator } from "./replicator.ts";
import type { RoutingSwitch } from "./routing-switch.ts";

export interface ReplicaStatusReport {
  region: string;
  home: boolean;
  globalEndpointRouting: boolean;
  status: string;
  pending: { records: number; blobs: number; bytes: number; repositories?: number };
  bootstrap?: { from: string; left: number; total: number };
  bytesPerSecond?: number;
  secondsLeft?: number;
  /** With `?usage=1`: what this replica stores, and the blob bytes it received per peer. */
  usage?: ReplicaUsage;
  peers: {
    region: string;
    connected: boolean;
    checkpoint: number;
    head: number;
    lagSeconds: number;
    lastError?: string | undefined;
  }[];
}

export interface ReplicaUsage {
  storedBytes: number;
  blobs: number;
  /** Blob bytes received from each region over the replica's life. */
  receivedFrom: Record<string, number>;
}

export function createStatusEndpoint(options: {
  config: Config;
  replicator: Replicator | undefined;
  routing: RoutingSwitch;
  /** When authentication is on, changing a replica needs the admin role. */
  authorizer?: Authorizer | undefined;
  /** Whether this replica is the home replica now (the replica set says). */
  isHome?: () => boolean;
  usage?: () => Promise<ReplicaUsage>;
}): ApiExtension {
  const { config } = options;
  const entry = config.replicas?.find((r) => r.region === config.region);
  return {
    prefix: "/_meridian/status",
    async handle(req, res, ctx) {
      if (req.method === "PUT") {
        await options.authorizer?.requireAdmin(req, ctx.client);
        // PUT {"globalEndpointRouting": false} takes the replica out of routing.
        const invalid = new OciError(
          "UNSUPPORTED",
          { reason: 'expected {"globalEndpointRouting": true|false}' },
          { status: 400 },
        );
        let body: { globalEndpointRouting?: unknown };
        try {
          body = JSON.parse((await readBody(req, 4096)).toString("utf8"));
        } catch (error) {
          if (error instanceof OciError) throw error;
          throw invalid;
        }
        if (typeof body?.globalEndpointRouting !== "boolean") throw invalid;
        await options.routing.set(body.globalEndpointRouting);
      }
      const replication = options.replicator?.status();
      const report: ReplicaStatusReport = {
        region: config.region ?? "local",
        home: options.isHome?.() ?? entry?.home ?? true,
        globalEndpointRouting: options.routing.globalEndpointRouting,
        status: replication?.status ?? "Ready",
        pending: replication?.pending ?? { records: 0, blobs: 0, bytes: 0 },
        peers: replication?.peers ?? [],
        ...(replication?.bootstrap ? { bootstrap: replication.bootstrap } : {}),
        bytesPerSecond: replication?.bytesPerSecond ?? 0,
        ...(replication?.secondsLeft !== undefined ? { secondsLeft: replication.secondsLeft } : {}),
        // Only when asked (`?usage=1`): it sums the store, and health probes read this
        // report every second.
        ...(options.usage && ctx.query.get("usage") === "1"
          ? { usage: await options.usage() }
          : {}),
      };
      sendJson(res, 200, report);
    },
  };
}
