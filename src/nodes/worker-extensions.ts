// The API extensions of a worker that does not lead: it answers the data plane itself
// (token issuance, the peer feed and content) and forwards everything that runs once per
// replica to the leader (the control plane, status, metrics, the portal, and the peer
// calls that make replication work happen: a drain, an anti-entropy round).
import type { ApiExtension } from "../api/api-server.ts";
import { forwardToLeader } from "./leader-forwarding.ts";

export interface WorkerExtensionsOptions {
  /** Authentication's own endpoints (the token endpoint). */
  auth: readonly ApiExtension[];
  /** The peer API, when the replica replicates. */
  peerApi: ApiExtension | undefined;
  leaderUrl: () => string | undefined;
}

/** Peer calls that use the followers, which only the leader runs. */
const leaderPeerCalls = ["/_meridian/replication/drained", "/_meridian/replication/anti-entropy"];

export function workerExtensions(options: WorkerExtensionsOptions): ApiExtension[] {
  const toLeader = (prefix: string) => forwardToLeader(prefix, options.leaderUrl);
  return [
    ...options.auth,
    ...leaderPeerCalls.map(toLeader),
    ...(options.peerApi ? [options.peerApi] : []),
    toLeader("/_meridian/"),
    toLeader("/portal"),
    toLeader("/metrics"),
  ];
}
