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
  /**
   * Nodes on several machines over one database: leadership is a lease that any node may
   * take when the leader goes (absent: node 0 leads, for as long as it runs).
   */
  lease?: LeadershipLease | undefined;
}

/** The region's leadership as the shared database holds it. */
export interface LeadershipLease {
  readonly slot: number;
  tryLead(): Promise<boolean>;
  advertise(url: string): Promise<void>;
  leaderUrl(): Promise<string | undefined>;
  /** The replica id the region's nodes share (the first one's `candidate`). */
  replicaId(candidate: string): Promise<string>;
  close(): Promise<void>;
}

/** A replica that is one process: its only node leads. */
export const soleNode: NodeRole = { slot: 0, slots: 1 };

/** Whether the node leads from its start (a lease may make a node leader later). */
export function isLeader(role: NodeRole): boolean {
  return role.lease === undefined && role.slot === 0;
}

/** How many workers `workers: auto | N` means on this machine. */
export function workerCount(setting: "auto" | number, cores: number): number {
  return setting === "auto" ? Math.max(1, cores) : setting;
}
