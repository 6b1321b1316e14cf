// Reads one replica's own status report (GET /_meridian/status, open to anyone), with a
// deadline, for the replication listing and the lifecycle checks of the home replica.
import type { ReplicaStatusReport } from "../replication/status-endpoint.ts";
import { unreachableReason } from "./unreachable-reason.ts";

export async function readReplicaStatus(
  url: string,
  timeoutMs: number,
  options: { usage?: boolean } = {},
): Promise<ReplicaStatusReport> {
  const target = `${url.replace(/\/+$/, "")}/_meridian/status${options.usage ? "?usage=1" : ""}`;
  const response = await fetch(target, { signal: AbortSignal.timeout(timeoutMs) }).catch(
    (error: unknown) => {
      throw new Error(unreachableReason(error, target));
    },
  );
  if (!response.ok) {
    await response.body?.cancel();
    throw new Error(`status endpoint answered ${response.status}`);
  }
  return (await response.json()) as ReplicaStatusReport;
}
