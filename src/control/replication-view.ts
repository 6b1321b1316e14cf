// One replication as the admin API and the CLI show it: the fields `az acr replication`
// users know (name, location, provisioningState, status, regionEndpointEnabled), and what
// Meridian measures besides (endpoint, lag, pending records, blobs and bytes, the
// transfer rate and the time left). The live part is read from the replica itself.
import type { ReplicaRecord } from "./replica-set.ts";
import { readReplicaStatus } from "./replica-status-reader.ts";
import type { ReplicationView } from "./replication-view-type.ts";

export type { ReplicationView } from "./replication-view-type.ts";

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
