// GET /_meridian/admin/usage (admin role): the per-region cost view, as ACR bills it:
// bytes stored in each region and blob bytes transferred between each pair of regions
// (egress of `from`). Each replica reports its own share in its status; this adds them up.
//
//   {regions: [{region, storedBytes, blobs, reachable, reason?}],
//    transfers: [{from, to, bytes}]}
//
// Transfers count over each replica's whole life (kept in its replication.db); its
// /metrics counter meridian_replication_bytes_received_total{source_region} counts the
// same bytes since the process started.
import type { ApiExtension } from "../api/api-server.ts";
import { sendJson } from "../api/responses.ts";
import type { Authorizer } from "../auth/authorizer.ts";
import { byCodeUnits } from "../code-unit-order.ts";
import { OciError } from "../oci/oci-error.ts";
import type { ReplicaSet } from "./replica-set.ts";
import { readReplicaStatus } from "./replica-status-reader.ts";

export const usagePath = "/_meridian/admin/usage";

export interface RegionUsage {
  region: string;
  storedBytes: number;
  blobs: number;
  reachable: boolean;
  reason?: string;
}

export interface RegistryUsage {
  regions: RegionUsage[];
  transfers: { from: string; to: string; bytes: number }[];
}

export function createUsageApi(options: {
  replicaSet: ReplicaSet;
  authorizer: Authorizer;
}): ApiExtension {
  return {
    prefix: usagePath,
    async handle(req, res, ctx) {
      await options.authorizer.requireAdmin(req, ctx.client);
      if (ctx.path !== usagePath || req.method !== "GET") {
        throw new OciError("UNSUPPORTED", { method: req.method });
      }
      sendJson(res, 200, await registryUsage(options.replicaSet));
    },
  };
}

async function registryUsage(replicaSet: ReplicaSet): Promise<RegistryUsage> {
  const usage: RegistryUsage = { regions: [], transfers: [] };
  const records = (await replicaSet.list()).filter((r) => r.endpoint !== undefined);
  const reports = await Promise.all(
    records.map(async (record) => {
      try {
        return {
          record,
          report: await readReplicaStatus(record.endpoint ?? "", 3_000, { usage: true }),
        };
      } catch (error) {
        return { record, error: (error as Error).message };
      }
    }),
  );
  for (const { record, report, error } of reports) {
    const region = record.region;
    if (!report?.usage) {
      usage.regions.push({
        region,
        storedBytes: 0,
        blobs: 0,
        reachable: false,
        reason: error ?? "no usage reported",
      });
      continue;
    }
    const { storedBytes, blobs, receivedFrom } = report.usage;
    usage.regions.push({ region, storedBytes, blobs, reachable: true });
    for (const [from, bytes] of Object.entries(receivedFrom)) {
      if (bytes > 0) usage.transfers.push({ from, to: region, bytes });
    }
  }
  usage.transfers.sort((a, b) => byCodeUnits(a.from, b.from) || byCodeUnits(a.to, b.to));
  return usage;
}
