// The records of the filesystem store's upload sessions (which repository, since when),
// as rows of `uploads.db` in the data folder; each session's bytes are one file beside it,
// `uploads/<id>`. A session used to be a folder with `info.json` and `data`: three new
// inodes per blob pushed through a session (as docker and skopeo push) and two freed at
// its end. On the development machine's ext4 (no journal, which skips recently freed
// inodes) an experiment with the records in memory pushed small images through sessions
// at 49-61 images/s against 33-36. A row costs an insert, and a durable store's inserts
// share one WAL flush.
import type { Statement } from "better-sqlite3";
import { openWalDatabase, type WalDatabase } from "./wal-database.ts";

/** The table's file name in the data folder. */
export const uploadSessionFile = "uploads.db";

export interface SessionRecord {
  id: string;
  repository: string;
  startedAt: Date;
}

interface Row {
  id: string;
  repository: string;
  started_at: number;
}

const schema = `
CREATE TABLE IF NOT EXISTS upload_sessions (
  id TEXT PRIMARY KEY,
  repository TEXT NOT NULL,
  started_at INTEGER NOT NULL
);`;

export class UploadSessionTable {
  private readonly database: WalDatabase;
  private readonly sql: { get: Statement; insert: Statement; delete: Statement; all: Statement };

  constructor(path: string, durable: boolean) {
    this.database = openWalDatabase(path, durable, schema);
    const db = this.database.db;
    this.sql = {
      get: db.prepare("SELECT id, repository, started_at FROM upload_sessions WHERE id = ?"),
      insert: db.prepare(
        "INSERT INTO upload_sessions (id, repository, started_at) VALUES (?, ?, ?)",
      ),
      delete: db.prepare("DELETE FROM upload_sessions WHERE id = ?"),
      all: db.prepare("SELECT id, repository, started_at FROM upload_sessions"),
    };
  }

  /** Records a new session; resolves once the record is on disk (durable stores). */
  async insert(record: SessionRecord): Promise<void> {
    this.sql.insert.run(record.id, record.repository, record.startedAt.getTime());
    await this.database.flushed();
  }

  get(id: string): SessionRecord | undefined {
    const row = this.sql.get.get(id) as Row | undefined;
    return row && recordOf(row);
  }

  /** Forgets a session; a deletion need not wait for the disk (a resurrected record expires). */
  delete(id: string): void {
    this.sql.delete.run(id);
  }

  all(): SessionRecord[] {
    return (this.sql.all.all() as Row[]).map(recordOf);
  }

  close(): Promise<void> {
    return this.database.close();
  }
}

function recordOf(row: Row): SessionRecord {
  return { id: row.id, repository: row.repository, startedAt: new Date(row.started_at) };
}
