// GET /_meridian/status: this replica's region, role and replication status, computed
// from real data. The CLI and the home replica read it to list the replications.
import type { ApiExtension } from "../api/api-server.ts";
import { sendJson } from "../api/responses.ts";
import type { Config } from "../config/config-schema.ts";
import type { Replicator } from "./replicator.ts";

export interface ReplicaStatusReport {
  region: string;
  home: boolean;
  globalEndpointRouting: boolean;
  status: string;
  pending: { records: number; blobs: number; bytes: number };
  peers: {
    region: string;
    connected: boolean;
    checkpoint: number;
    head: number;
    lagSeconds: number;
    lastError?: string | undefined;
  }[];
}

export function createStatusEndpoint(options: {
  config: Config;
  replicator: Replicator | undefined;
}): ApiExtension {
  const { config } = options;
  const entry = config.replicas?.find((r) => r.region === config.region);
  return {
    prefix: "/_meridian/status",
    async handle(_req, res) {
      const replication = options.replicator?.status();
      const report: ReplicaStatusReport = {
        region: config.region ?? "local",
        home: entry?.home ?? true,
        globalEndpointRouting: entry?.globalEndpointRouting ?? true,
        status: replication?.status ?? "Ready",
        pending: replication?.pending ?? { records: 0, blobs: 0, bytes: 0 },
        peers: replication?.peers ?? [],
      };
      sendJson(res, 200, report);
    },
  };
}
