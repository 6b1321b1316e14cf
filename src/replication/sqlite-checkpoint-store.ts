// The checkpoints of a replica whose metadata is the embedded SQLite file, in a small
// SQLite file of their own (replication.db), so that the registry core's schema knows
// nothing of peers.
import Database from "better-sqlite3";
import type { Checkpoint, CheckpointStore } from "./checkpoint-store.ts";

export class SqliteCheckpointStore implements CheckpointStore {
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

  async get(peer: string): Promise<Checkpoint> {
    const row = this.read.get(peer);
    return { seq: row?.seq ?? 0, log: row?.log ?? undefined };
  }

  async set(peer: string, seq: number, log: string | undefined): Promise<void> {
    this.write.run(peer, seq, log ?? null);
  }

  async addTransferred(bytes: Record<string, number>): Promise<void> {
    this.db.transaction(() => {
      for (const [peer, count] of Object.entries(bytes))
        if (count > 0) this.addBytes.run(peer, count);
    })();
  }

  async transferred(): Promise<Record<string, number>> {
    return Object.fromEntries(this.readBytes.all().map((row) => [row.peer, row.bytes]));
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
