// A replica's replication status, computed from real data: what each peer has that is
// not applied here yet, and the blobs still on their way.
//
//   Creating  no peer has been caught up with yet since the replica started
//   Syncing   some reachable peer has records not applied here, or blobs are arriving
//   Ready     caught up with every reachable peer, nothing pending
// Whether a replica is Failed is decided by whoever cannot reach it (the CLI, the home
// replica); peers this replica cannot reach show as disconnected.
import type { PeerSyncState } from "./peer-follower.ts";

export type ReplicaStatusName = "Creating" | "Syncing" | "Ready" | "Failed" | "Deleting";

export interface ReplicationStatus {
  status: ReplicaStatusName;
  /** `repositories`: while bootstrapping, those still to copy from the nearest peer. */
  pending: { records: number; blobs: number; bytes: number; repositories?: number };
  peers: PeerSyncState[];
  /** While a new replica copies its nearest peer's state. */
  bootstrap?: { from: string; left: number; total: number };
  /** Blob bytes arriving per second, measured over the last seconds. */
  bytesPerSecond?: number;
  /** Estimated seconds until the pending bytes are here (undefined: no rate yet). */
  secondsLeft?: number | undefined;
}

export function computeStatus(
  peers: PeerSyncState[],
  pendingBlobs: number,
  pendingBytes: number,
  everCaughtUp: boolean,
): ReplicationStatus {
  const reachable = peers.filter((p) => p.connected);
  const records = reachable.reduce((sum, p) => sum + Math.max(0, p.head - p.checkpoint), 0);
  const pending = { records, blobs: pendingBlobs, bytes: pendingBytes };
  if (!everCaughtUp && peers.length > 0) return { status: "Creating", pending, peers };
  const busy = records > 0 || pendingBlobs > 0;
  return { status: busy ? "Syncing" : "Ready", pending, peers };
}
