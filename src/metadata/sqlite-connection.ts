// How a replica opens each of its shared SQLite files: the metadata store's (which holds
// the small blobs too), and the blob store's uploads.db and, beside PostgreSQL metadata,
// small-blobs.db (wal-database.ts).
//
// - WAL, so that the workers of a replica share the file; commits with synchronous=NORMAL
//   (the WAL is written, not flushed): the stores flush it off the event loop before they
//   acknowledge a write (sqlite-wal-sync.ts).
// - temp_store=MEMORY. The metadata store commits a batch of writes as one transaction,
//   each write in a savepoint; once a batch's savepoint journal passed 64 KiB, SQLite moved
//   it into a new file in /var/tmp, created and deleted within the commit: 45 such files
//   for 100 small images pushed at c=8. In memory, a push no longer depends on /var/tmp
//   being writable either.
// - A page cache of a stated size. better-sqlite3 builds SQLite with a 16 MB cache per
//   connection, which fills and is never given back: a replica that had pushed 3,000 small
//   images stayed at 119-120 MiB RSS, 93 MiB with these sizes (images/s the same within the
//   runs' noise, 3 runs each: 183-211 against 194-217). A full cache also costs every
//   commit that split a b-tree page: SQLite 3.53 then scans the cache's whole hash table
//   (`pcache1TruncateUnsafe`, 3-6% of the main thread's samples in those pushes), since
//   the split renumbers pages through the page number above the 1 GiB lock byte.
import type { Database } from "better-sqlite3";

/** The metadata's cache: its hot rows (tags, manifests, links) and the b-trees' inner pages. */
export const metadataCacheKiB = 4096;

/** The blob store's tables: their rows are read once per pull and the kernel caches them. */
export const blobTableCacheKiB = 1024;

export function configureConnection(db: Database, cacheKiB: number): void {
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.pragma("busy_timeout = 5000");
  db.pragma("temp_store = MEMORY");
  // A negative cache_size is in KiB, a positive one in pages.
  db.pragma(`cache_size = -${cacheKiB}`);
}
