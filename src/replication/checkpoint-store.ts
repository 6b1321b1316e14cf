// Durable per-peer checkpoints: the last feed seq of each peer applied here, and the
// identity of the peer's change log that seq counts in. Kept in its own small SQLite file
// so that the registry core's schema knows nothing of peers. Applying a record twice is
// harmless, so the checkpoint is saved after the apply.
import Database from "better-sqlite3";

export class CheckpointStore {
  private readonly db: Database.Database;
  private readonly read: Database.Statement<[string], { seq: number; log: string | null }>;
  private readonly write: Database.Statement<[string, number, string | null]>;

  constructor(path: string) {
    this.db = new Database(path);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = NORMAL");
    this.db.exec(
      "CREATE TABLE IF NOT EXISTS checkpoints (peer TEXT PRIMARY KEY, seq INTEGER NOT NULL, log TEXT)",
    );
    const columns = this.db.prepare("PRAGMA table_info(checkpoints)").all() as { name: string }[];
    if (!columns.some((column) => column.name === "log")) {
      this.db.exec("ALTER TABLE checkpoints ADD COLUMN log TEXT");
    }
    this.read = this.db.prepare("SELECT seq, log FROM checkpoints WHERE peer = ?");
    this.write = this.db.prepare(
      `INSERT INTO checkpoints (peer, seq, log) VALUES (?, ?, ?)
       ON CONFLICT (peer) DO UPDATE SET seq = excluded.seq, log = excluded.log`,
    );
  }

  /** The last applied seq of the peer's feed, and which log of the peer it counts in. */
  get(peer: string): { seq: number; log: string | undefined } {
    const row = this.read.get(peer);
    return { seq: row?.seq ?? 0, log: row?.log ?? undefined };
  }

  set(peer: string, seq: number, log: string | undefined): void {
    this.write.run(peer, seq, log ?? null);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
