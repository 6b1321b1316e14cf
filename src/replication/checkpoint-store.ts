// Durable per-peer checkpoints: the last feed seq of each peer applied here, and the
// identity of the peer's change log that seq counts in; and the blob bytes received from
// each peer over the replica's life (the cost view). Applying a record twice is harmless,
// so a checkpoint is saved after the apply. Two drivers: a SQLite file beside embedded
// metadata (sqlite-checkpoint-store.ts), and tables in the region's PostgreSQL database
// (postgres-checkpoint-store.ts), so that the node that takes the lead after another died
// follows each peer on from where that one stopped.

export interface Checkpoint {
  seq: number;
  log: string | undefined;
}

export interface CheckpointStore {
  /** The last applied seq of the peer's feed (0: none), and which log it counts in. */
  get(peer: string): Promise<Checkpoint>;
  set(peer: string, seq: number, log: string | undefined): Promise<void>;
  /** Adds bytes received from peers (one transaction). */
  addTransferred(bytes: Record<string, number>): Promise<void>;
  /** Bytes received from each peer, as added so far. */
  transferred(): Promise<Record<string, number>>;
  close(): Promise<void>;
}
