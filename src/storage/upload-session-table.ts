// The records of the filesystem store's upload sessions (which repository, since when), as
// rows of `uploads.db` in the data folder. A session's bytes stay in its row while they fit
// in a small blob (at most 64 KiB, sent in requests that each end within that limit) and
// move to one file beside it, `uploads/<id>`, the first time they would not: the row then
// says `spilled` and the file holds the truth.
//
// Why rows: a session used to be a folder with `info.json` and `data`, three new inodes per
// blob pushed through a session (as docker and skopeo push) and two freed at its end; on
// the development machine's ext4 (no journal, which skips recently freed inodes) an
// experiment with the records in memory pushed small images through sessions at 49-61
// images/s against 33-36. A record with one file measured 65-67 against 45-47; a small
// blob's bytes in the row need no file at all. A row costs an insert, and a durable
// store's inserts share one WAL flush.
import type { Statement } from "better-sqlite3";
import { openWalDatabase, type WalDatabase } from "./wal-database.ts";

/** The table's file name in the data folder. */
export const uploadSessionFile = "uploads.db";

export interface SessionRecord {
  id: string;
  repository: string;
  startedAt: Date;
}

/** A session as its row says: its bytes so far while they are in the row. */
export interface SessionRow extends SessionRecord {
  /** The bytes are in `uploads/<id>`; `inline` is then empty. */
  spilled: boolean;
  inline: Buffer;
  /** When the row's bytes last changed (the file's mtime says it once spilled). */
  updatedAt: Date;
}

interface Row {
  id: string;
  repository: string;
  started_at: number;
  updated_at: number | null;
  spilled: number;
  bytes: Buffer | null;
}

const schema = `
CREATE TABLE IF NOT EXISTS upload_sessions (
  id TEXT PRIMARY KEY,
  repository TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  updated_at INTEGER,
  spilled INTEGER NOT NULL,
  bytes BLOB
);`;

/**
 * Columns a table made by the release before the rows held bytes lacks. Its sessions all
 * have their file, so they count as spilled.
 */
const addedColumns: Record<string, string> = {
  updated_at: "ALTER TABLE upload_sessions ADD COLUMN updated_at INTEGER",
  spilled: "ALTER TABLE upload_sessions ADD COLUMN spilled INTEGER NOT NULL DEFAULT 1",
  bytes: "ALTER TABLE upload_sessions ADD COLUMN bytes BLOB",
};

const columns = "id, repository, started_at, updated_at, spilled, bytes";

export class UploadSessionTable {
  private readonly database: WalDatabase;
  private readonly sql: {
    get: Statement;
    insert: Statement;
    setInline: Statement;
    markSpilled: Statement;
    delete: Statement;
    all: Statement;
  };

  constructor(path: string, durable: boolean) {
    this.database = openWalDatabase(path, durable, schema);
    const db = this.database.db;
    const present = new Set(
      (db.pragma("table_info(upload_sessions)") as { name: string }[]).map((c) => c.name),
    );
    for (const [column, statement] of Object.entries(addedColumns)) {
      if (!present.has(column)) db.exec(statement);
    }
    this.sql = {
      get: db.prepare(`SELECT ${columns} FROM upload_sessions WHERE id = ?`),
      insert: db.prepare(
        "INSERT INTO upload_sessions (id, repository, started_at, updated_at, spilled) VALUES (?, ?, ?, ?, 0)",
      ),
      // Only where the row still holds exactly `offset` bytes: a worker that appended
      // meanwhile makes this one fail instead of being overwritten.
      setInline: db.prepare(
        "UPDATE upload_sessions SET bytes = ?, updated_at = ? WHERE id = ? AND spilled = 0 AND coalesce(length(bytes), 0) = ?",
      ),
      markSpilled: db.prepare(
        "UPDATE upload_sessions SET spilled = 1, bytes = NULL, updated_at = NULL WHERE id = ?",
      ),
      delete: db.prepare("DELETE FROM upload_sessions WHERE id = ?"),
      all: db.prepare(`SELECT ${columns} FROM upload_sessions`),
    };
  }

  /**
   * Records a new, empty session. Not flushed: the record holds no byte of the upload yet,
   * and a power loss that takes it away leaves its client to start the upload again, as
   * a crash in the middle of an upload does (Distribution flushes no part of a session).
   * The other workers see the record at once: a commit is visible before it is flushed.
   * A file the session writes later without its record surviving is swept as idle.
   */
  insert(record: SessionRecord): void {
    const started = record.startedAt.getTime();
    this.sql.insert.run(record.id, record.repository, started, started);
  }

  get(id: string): SessionRow | undefined {
    const row = this.sql.get.get(id) as Row | undefined;
    return row && rowOf(row);
  }

  /**
   * Replaces the row's bytes (`offset` of them before) with `bytes`; false when the row is
   * gone, spilled or of another length. Not flushed: like an append to a file, a power loss
   * may at worst shorten the upload, and the client resends from where its Range says.
   */
  setInline(id: string, offset: number, bytes: Buffer, updatedAt: Date): boolean {
    return this.sql.setInline.run(bytes, updatedAt.getTime(), id, offset).changes > 0;
  }

  /** The session's bytes are in its file from now on. */
  markSpilled(id: string): void {
    this.sql.markSpilled.run(id);
  }

  /** Forgets a session; a deletion need not wait for the disk (a resurrected record expires). */
  delete(id: string): void {
    this.sql.delete.run(id);
  }

  all(): SessionRow[] {
    return (this.sql.all.all() as Row[]).map(rowOf);
  }

  close(): Promise<void> {
    return this.database.close();
  }
}

function rowOf(row: Row): SessionRow {
  const startedAt = new Date(row.started_at);
  return {
    id: row.id,
    repository: row.repository,
    startedAt,
    spilled: row.spilled === 1,
    inline: row.bytes ?? Buffer.alloc(0),
    updatedAt: row.updated_at === null ? startedAt : new Date(row.updated_at),
  };
}
