import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import Database from "better-sqlite3";
import { digestOf } from "../oci/digest.ts";
import { mediaTypes } from "../oci/media-types.ts";
import { runMetadataStoreSuite } from "./metadata-store-suite.ts";
import { SqliteMetadataStore } from "./sqlite-metadata-store.ts";

runMetadataStoreSuite("SQLite", async () => {
  const dir = await mkdtemp(join(tmpdir(), "meridian-sqlite-"));
  const path = join(dir, "metadata.db");
  // A listener that throws is reported here; the suite checks that nothing else notices.
  const store = new SqliteMetadataStore({ path, onListenerError: () => {} });
  const others: SqliteMetadataStore[] = [];
  return {
    store,
    reopen: async () => new SqliteMetadataStore({ path }),
    another: async () => {
      // Extra stores test merge behaviour, not durability: in memory.
      const other = new SqliteMetadataStore({ path: ":memory:" });
      others.push(other);
      return other;
    },
    cleanup: async () => {
      await store.close();
      for (const other of others) await other.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

it("SQLite store upgrades a database whose tags table predates tags.visible", async () => {
  const dir = await mkdtemp(join(tmpdir(), "meridian-sqlite-"));
  try {
    const path = join(dir, "metadata.db");
    const stamp = (n: number) => `${1_700_000_000_000 + n}.000000.test`;
    const manifest = (v: string, n: number) => {
      const bytes = Buffer.from(JSON.stringify({ v }));
      const digest = digestOf(bytes);
      const record = { repository: "repo", digest, mediaType: mediaTypes.ociManifest, bytes };
      return { ...record, blobs: [], manifests: [], stamp: stamp(n) };
    };
    const kept = manifest("kept", 1);
    const gone = manifest("gone", 2);
    const store = new SqliteMetadataStore({ path });
    await store.putManifest(kept, "a");
    await store.putManifest(gone, "b");
    await store.deleteManifest("repo", gone.digest, stamp(3));
    await store.putManifest({ ...kept, stamp: stamp(4) }, "c");
    await store.deleteTag("repo", "c", stamp(5));
    await store.close();
    const raw = new Database(path);
    raw.exec("ALTER TABLE tags DROP COLUMN visible");
    raw.close();
    const upgraded = new SqliteMetadataStore({ path });
    try {
      assert.deepEqual(await upgraded.listTags("repo", {}), ["a"]);
      assert.equal((await upgraded.getTaggedManifest("repo", "a"))?.digest, kept.digest);
      await upgraded.putManifest({ ...gone, stamp: stamp(6) }, "d");
      assert.deepEqual(await upgraded.listTags("repo", {}), ["a", "d"]);
    } finally {
      await upgraded.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
