// One replication as the admin API and the CLI show it: the fields `az acr replication`
// users know (name, location, provisioningState, status, regionEndpointEnabled), and what
// Meridian measures besides (endpoint, lag, pending records, blobs and bytes, the
// transfer rate and the time left). The live part is read from the replica itself.
import type { ReplicaRecord } from "./replica-set.ts";
import { readReplicaStatus } from "./replica-status-reader.ts";

export interface ReplicationView {
  name: string;
  location: string;
  /** The same as `location` (Meridian's word for it). */
  region: string;
  endpoint: string | null;
  home: boolean;
  regionEndpointEnabled: boolean;
  provisioner: "local" | "join";
  /** Creating, Succeeded, Deleting, or Failed. */
  provisioningState: string;
  /** Creating, Syncing, Ready, Failed, or Deleting. */
  status: string;
  statusMessage?: string;
  lagSeconds: number;
  pending: { records: number; blobs: number; bytes: number; repositories?: number };
  bytesPerSecond: number;
  /** Estimated seconds until the pending bytes arrive; absent without a measured rate. */
  secondsLeft?: number;
  createdAt: string;
}

/** A replica that does not answer this long after its creation is Failed, not Creating. */
const startGraceMs = 120_000;
const statusTimeoutMs = 2_000;

export async function viewOf(record: ReplicaRecord): Promise<ReplicationView> {
  const base: ReplicationView = {
    name: record.region,
    location: record.region,
    region: record.region,
    endpoint: record.endpoint ?? null,
    home: record.home,
    regionEndpointEnabled: record.globalEndpointRouting,
    provisioner: record.provisioner,
    provisioningState: record.state,
    status: record.state === "Deleting" ? "Deleting" : "Creating",
    lagSeconds: 0,
    pending: { records: 0, blobs: 0, bytes: 0 },
    bytesPerSecond: 0,
    createdAt: record.createdAt,
  };
  if (record.state === "Deleting") return { ...base, statusMessage: "draining into the others" };
  // Read at the endpoint clients use (not through a route between replicas): a replica
  // Failed here is one its users cannot reach.
  const url = record.endpoint;
  if (!url) return { ...base, statusMessage: "waiting for the replica to join" };
  try {
    const report = await readReplicaStatus(url, statusTimeoutMs);
    return {
      ...base,
      status: report.status,
      lagSeconds: Math.max(0, ...report.peers.map((p) => p.lagSeconds)),
      pending: report.pending,
      bytesPerSecond: report.bytesPerSecond ?? 0,
      ...(report.secondsLeft !== undefined ? { secondsLeft: report.secondsLeft } : {}),
      ...(report.bootstrap
        ? {
            statusMessage: `copying ${report.bootstrap.left} of ${report.bootstrap.total} repositories from ${report.bootstrap.from}`,
          }
        : {}),
    };
  } catch (error) {
    const reason = (error as Error).message;
    const starting =
      record.state === "Creating" && Date.now() - Date.parse(record.createdAt) < startGraceMs;
    if (starting) return { ...base, statusMessage: "starting" };
    return {
      ...base,
      status: "Failed",
      provisioningState: record.state === "Creating" ? "Failed" : record.state,
      statusMessage: reason,
    };
  }
}
