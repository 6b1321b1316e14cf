// Opens one of the blob store's own SQLite files (uploads.db; small-blobs.db where the
// small blobs cannot share the metadata's file) the way the
// metadata store opens its own (sqlite-connection.ts). A durable store's writes wait for
// `flushed()`, which flushes the WAL off the event loop and is shared by the commits made
// meanwhile.
import Database, { type Database as SqliteDatabase } from "better-sqlite3";
import { blobTableCacheKiB, configureConnection } from "../metadata/sqlite-connection.ts";
import { SqliteWalSync } from "../metadata/sqlite-wal-sync.ts";

export interface WalDatabase {
  db: SqliteDatabase;
  /** Resolves once every commit made before the call is on disk (at once when not durable). */
  flushed(): Promise<void>;
  close(): Promise<void>;
}

export function openWalDatabase(path: string, durable: boolean, schema: string): WalDatabase {
  const db = new Database(path);
  configureConnection(db, blobTableCacheKiB);
  db.exec(schema);
  const walSync = durable ? new SqliteWalSync(`${path}-wal`) : undefined;
  return {
    db,
    flushed: async () => {
      await walSync?.sync();
    },
    close: async () => {
      await walSync?.close();
      db.close();
    },
  };
}
