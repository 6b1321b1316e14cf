// Durable per-peer checkpoints: the last feed seq of each peer applied here, and the
// identity of the peer's change log that seq counts in. Kept in its own small SQLite file
// so that the registry core's schema knows nothing of peers. Applying a record twice is
// harmless, so the checkpoint is saved after the apply.
import Database from "better-sqlite3";

export class CheckpointStore {
  private readonly db: Database.Database;
  private readonly read: Database.Statement<[string], { seq: number; log: string | null }>;
  private readonly write: Database.Statement<[string, number, string | null]>;
  private readonly addBytes: Database.Statement<[string, number]>;
  private readonly readBytes: Database.Statement<[], { peer: string; bytes: number }>;

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
    // Blob bytes received from each peer over the replica's whole life (the cost view).
    this.db.exec(
      "CREATE TABLE IF NOT EXISTS transferred (peer TEXT PRIMARY KEY, bytes INTEGER NOT NULL)",
    );
    this.addBytes = this.db.prepare(
      `INSERT INTO transferred (peer, bytes) VALUES (?, ?)
       ON CONFLICT (peer) DO UPDATE SET bytes = bytes + excluded.bytes`,
    );
    this.readBytes = this.db.prepare("SELECT peer, bytes FROM transferred");
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

  /** Adds bytes received from peers (one transaction). */
  addTransferred(bytes: Record<string, number>): void {
    this.db.transaction(() => {
      for (const [peer, count] of Object.entries(bytes))
        if (count > 0) this.addBytes.run(peer, count);
    })();
  }

  /** Bytes received from each peer, as added so far. */
  transferred(): Record<string, number> {
    return Object.fromEntries(this.readBytes.all().map((row) => [row.peer, row.bytes]));
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
