// Durable per-peer checkpoints: the last feed seq of each peer applied here. Kept in its
// own small SQLite file so that the registry core's schema knows nothing of peers.
// Applying a record twice is harmless, so the checkpoint is saved after the apply.
import Database from "better-sqlite3";

export class CheckpointStore {
  private readonly db: Database.Database;
  private readonly read: Database.Statement<[string], { seq: number }>;
  private readonly write: Database.Statement<[string, number]>;

  constructor(path: string) {
    this.db = new Database(path);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = NORMAL");
    this.db.exec(
      "CREATE TABLE IF NOT EXISTS checkpoints (peer TEXT PRIMARY KEY, seq INTEGER NOT NULL)",
    );
    this.read = this.db.prepare("SELECT seq FROM checkpoints WHERE peer = ?");
    this.write = this.db.prepare(
      "INSERT INTO checkpoints (peer, seq) VALUES (?, ?) ON CONFLICT (peer) DO UPDATE SET seq = excluded.seq",
    );
  }

  get(peer: string): number {
    return this.read.get(peer)?.seq ?? 0;
  }

  set(peer: string, seq: number): void {
    this.write.run(peer, seq);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
