// Which node of its replica this process is. A replica may run as several worker processes
// on one machine (`workers`), which share its stores: every node serves the data plane
// (`/v2/`, token issuance, the peer feed and content), and node 0, the leader, also runs
// everything that must run once per replica (following the peers, anti-entropy, webhook
// delivery, imports, garbage collection, the replica lifecycle) and answers the control
// plane, which the other nodes forward to it.

export interface NodeRole {
  /** This node's index, 0 for the leader. */
  slot: number;
  /** How many nodes the replica runs as. */
  slots: number;
  /**
   * On a node other than the leader: where the leader answers the requests forwarded to
   * it (undefined while it is starting or restarting).
   */
  leaderUrl?: () => string | undefined;
}

/** A replica that is one process: its only node leads. */
export const soleNode: NodeRole = { slot: 0, slots: 1 };

export function isLeader(role: NodeRole): boolean {
  return role.slot === 0;
}

/** How many workers `workers: auto | N` means on this machine. */
export function workerCount(setting: "auto" | number, cores: number): number {
  return setting === "auto" ? Math.max(1, cores) : setting;
}
