import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, watch } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import Database from "better-sqlite3";
import { withTempFolder } from "../../test/support/temp-folder.ts";
import { digestOf } from "../oci/digest.ts";
import { mediaTypes } from "../oci/media-types.ts";
import { configureConnection } from "./sqlite-connection.ts";
import { SqliteMetadataStore } from "./sqlite-metadata-store.ts";

// SQLite takes its folder for temporary files from SQLITE_TMPDIR when it first needs one;
// this file runs in a process of its own, and nothing here has opened a database yet.
const sqliteTemp = mkdtempSync(join(tmpdir(), "meridian-sqlite-temp-"));
process.env.SQLITE_TMPDIR = sqliteTemp;

it("opens a file in WAL mode with a page cache of the given size and temporary data in memory", () =>
  withTempFolder("meridian-connection-", async (folder) => {
    const db = new Database(join(folder, "some.db"));
    try {
      configureConnection(db, 1024);
      assert.equal(db.pragma("journal_mode", { simple: true }), "wal");
      assert.equal(db.pragma("synchronous", { simple: true }), 1);
      assert.equal(db.pragma("temp_store", { simple: true }), 2);
      assert.equal(db.pragma("cache_size", { simple: true }), -1024);
      assert.equal(db.pragma("busy_timeout", { simple: true }), 5000);
    } finally {
      db.close();
    }
  }));

it("commits a large batch of manifest writes without a temporary file", () =>
  withTempFolder("meridian-connection-", async (folder) => {
    mkdirSync(sqliteTemp, { recursive: true });
    const created: string[] = [];
    const watcher = watch(sqliteTemp, (_event, name) => created.push(String(name)));
    const store = new SqliteMetadataStore({ path: join(folder, "metadata.db") });
    // Issued in one tick, the puts are one batch: one transaction with a savepoint each.
    const putBatch = (from: number, count: number) =>
      Promise.all(
        Array.from({ length: count }, (_, k) => {
          const n = from + k;
          const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, n, pad: "x".repeat(600) }));
          const manifest = {
            repository: `team/app-${n % 7}`,
            digest: digestOf(bytes),
            mediaType: mediaTypes.ociManifest,
            bytes,
            blobs: [],
            manifests: [],
            stamp: `${1_700_000_000_000 + n}.000000.test`,
          };
          return store.putManifest(manifest, `v${n}`);
        }),
      );
    try {
      // Pages that exist when a savepoint starts are copied into its journal before they
      // change: after the first batch, the second one's journal grows far past 64 KiB.
      await putBatch(0, 1000);
      created.length = 0;
      await putBatch(1000, 200);
      // fs.watch reports through the event loop: let a pending report arrive first.
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(created, []);
    } finally {
      watcher.close();
      await store.close();
    }
  }));
