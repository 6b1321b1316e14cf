// Blobs of at most 64 KiB (image configs, small layers, signatures, attestations) kept as
// rows of one SQLite table in the data folder, `small-blobs.db`, instead of a file each.
//
// Why: a file per blob costs a new inode, a write, an fsync of the file, a rename and an
// fsync of its folder. In a profile of small-image pushes (config + 2 x 4 KiB layers +
// manifest, c=8, durable) creating the files alone was 17% of the replica's CPU samples
// (ext4's inode allocator), and the blob writes half of each push's wait. A row costs one
// insert, and its commit shares one WAL flush with every commit made meanwhile
// (sqlite-wal-sync.ts). With the blob writes left out entirely the same load pushed
// twice as many images per second, which bounds what the table can gain.
//
// A row is inserted only after its bytes were verified against the digest, in one
// transaction, so a crash leaves either the whole blob or nothing. Every process of a
// replica (workers) opens the same file; SQLite's WAL lets them share it.
import type { Statement } from "better-sqlite3";
import type { Digest } from "../oci/digest.ts";
import type { StoredBlob } from "./blob-store.ts";
import { openWalDatabase, type WalDatabase } from "./wal-database.ts";

/** The largest blob kept in the table; larger ones are files. */
export const smallBlobBytes = 64 * 1024;

/** The table's file name in the data folder. */
export const smallBlobFile = "small-blobs.db";

export interface SmallBlob {
  bytes: Buffer;
  createdAt: Date;
}

interface Row {
  digest: string;
  size: number;
  created_at: number;
}

const schema = `
CREATE TABLE IF NOT EXISTS small_blobs (
  digest TEXT PRIMARY KEY,
  size INTEGER NOT NULL,
  bytes BLOB NOT NULL,
  created_at INTEGER NOT NULL
);`;

export class SmallBlobTable {
  private readonly database: WalDatabase;
  private readonly sql: {
    get: Statement;
    size: Statement;
    put: Statement;
    delete: Statement;
    list: Statement;
  };

  /** `durable`: a put resolves only once its row is on disk. */
  constructor(path: string, durable: boolean) {
    this.database = openWalDatabase(path, durable, schema);
    const db = this.database.db;
    this.sql = {
      get: db.prepare("SELECT bytes, created_at FROM small_blobs WHERE digest = ?"),
      size: db.prepare("SELECT size FROM small_blobs WHERE digest = ?").pluck(),
      put: db.prepare(
        "INSERT OR IGNORE INTO small_blobs (digest, size, bytes, created_at) VALUES (?, ?, ?, ?)",
      ),
      delete: db.prepare("DELETE FROM small_blobs WHERE digest = ?"),
      list: db.prepare(
        "SELECT digest, size, created_at FROM small_blobs WHERE digest > ? ORDER BY digest LIMIT ?",
      ),
    };
  }

  get(digest: Digest): SmallBlob | undefined {
    const row = this.sql.get.get(digest) as { bytes: Buffer; created_at: number } | undefined;
    return row && { bytes: row.bytes, createdAt: new Date(row.created_at) };
  }

  size(digest: Digest): number | undefined {
    return this.sql.size.get(digest) as number | undefined;
  }

  /** Stores verified bytes under their digest (a blob already there is kept as it is). */
  async put(digest: Digest, bytes: Buffer): Promise<void> {
    if (bytes.length > smallBlobBytes) throw new Error(`blob ${digest} is too large for the table`);
    this.sql.put.run(digest, bytes.length, bytes, Date.now());
    await this.database.flushed();
  }

  /** Removes the row; false when there was none. A deletion need not wait for the disk. */
  delete(digest: Digest): boolean {
    return this.sql.delete.run(digest).changes > 0;
  }

  /** Rows in digest order after `after`, at most `limit`. */
  list(after: Digest | undefined, limit: number): StoredBlob[] {
    const rows = this.sql.list.all(after ?? "", limit) as Row[];
    return rows.map((row) => ({
      digest: row.digest as Digest,
      size: row.size,
      modifiedAt: new Date(row.created_at),
    }));
  }

  close(): Promise<void> {
    return this.database.close();
  }
}
