// Blobs of at most 64 KiB (image configs, small layers, signatures, attestations) kept as
// rows of one SQLite table instead of a file each: in the metadata store's file where the
// metadata is the embedded SQLite store, else in `small-blobs.db` in the data folder.
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
//
// Where the metadata is the embedded SQLite file, the table lives in that file instead
// (`besideMetadata`) and a put does not wait for a flush of its own: every blob written is
// followed by a metadata commit that names it (its link, or the record that replication
// applies), that commit waits for the flush of the same WAL, and SQLite replays a WAL only
// up to its first missing frame after a crash, so no link survives without its row. A
// blob then costs one WAL flush instead of two: in alternated runs of small-image pushes
// (5 each, 2,500 images, c=8) dropping the second flush took the replica from 410 to 486
// images/s (medians) and from 2.45 to 1.90 ms of CPU per image.
import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
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
  private readonly sql: {
    get: Statement;
    size: Statement;
    put: Statement;
    delete: Statement;
    list: Statement;
  };

  /** A table in a file of its own; `durable`: a put resolves only once its row is on disk. */
  static inFile(path: string, durable: boolean): SmallBlobTable {
    return new SmallBlobTable(openWalDatabase(path, durable, schema), { owned: true });
  }

  /**
   * The table in the metadata store's own file (see the header): a put resolves once its
   * row is committed, and is on disk with the metadata commit that follows it.
   */
  static besideMetadata(metadata: WalDatabase): SmallBlobTable {
    metadata.db.exec(schema);
    return new SmallBlobTable(metadata, { owned: false });
  }

  private constructor(
    private readonly database: WalDatabase,
    /** Whether this table opened the file: then a put waits for its flush, and close closes it. */
    private readonly mode: { owned: boolean },
  ) {
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
    if (this.mode.owned) await this.database.flushed();
  }

  /**
   * Moves the rows of a table kept in a file of its own (what replicas wrote before the
   * table moved into the metadata file) into this one, then removes that file. Idempotent:
   * a crash before the removal copies the rows again at the next start. Returns how many
   * rows it added.
   */
  async adopt(path: string): Promise<number> {
    if (this.mode.owned || !existsSync(path)) return 0;
    const db = this.database.db;
    db.prepare("ATTACH DATABASE ? AS legacy").run(path);
    let added = 0;
    try {
      const hasTable = db
        .prepare("SELECT 1 FROM legacy.sqlite_master WHERE type = 'table' AND name = 'small_blobs'")
        .get();
      if (hasTable) {
        added = db
          .prepare(
            `INSERT OR IGNORE INTO main.small_blobs (digest, size, bytes, created_at)
               SELECT digest, size, bytes, created_at FROM legacy.small_blobs`,
          )
          .run().changes;
      }
    } finally {
      // The last connection to close a WAL file checkpoints it and removes its -wal.
      db.prepare("DETACH DATABASE legacy").run();
    }
    // The copies are on disk before the file that held them goes.
    await this.database.flushed();
    for (const suffix of ["-wal", "-shm", ""]) await rm(`${path}${suffix}`, { force: true });
    return added;
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

  /** Closes the file this table opened; a table in the metadata file leaves it open. */
  async close(): Promise<void> {
    if (this.mode.owned) await this.database.close();
  }
}
