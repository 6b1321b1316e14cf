import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import Database from "better-sqlite3";
import { waitFor } from "../../test/support/wait-for.ts";
import { digestOf } from "../oci/digest.ts";
import { mediaTypes } from "../oci/media-types.ts";
import { runMetadataStoreSuite } from "./metadata-store-suite.ts";
import { prepareStatements, SqliteMetadataStore } from "./sqlite-metadata-store.ts";
import { schema } from "./sqlite-schema.ts";

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

it("SQLite store upgrades a schema 1 database: manifest references and tombstone kinds", async () => {
  const dir = await mkdtemp(join(tmpdir(), "meridian-sqlite-"));
  try {
    const path = join(dir, "metadata.db");
    const layer = digestOf(Buffer.from("layer"));
    const child = digestOf(Buffer.from("child"));
    const bytes = Buffer.from(JSON.stringify({ v: "refs" }));
    const record = { repository: "repo", digest: digestOf(bytes), bytes };
    const store = new SqliteMetadataStore({ path });
    await store.putManifest({
      ...record,
      mediaType: mediaTypes.ociIndex,
      blobs: [layer],
      manifests: [child],
      stamp: "1700000000001.000000.test",
    });
    await store.close();
    // What a schema 1 database looks like: no references table rows, version 1.
    const raw = new Database(path);
    raw.exec("DELETE FROM manifest_refs; UPDATE meta SET value = '1' WHERE key = 'schema_version'");
    raw.exec("ALTER TABLE blob_link_tombstones DROP COLUMN expired");
    raw.exec("ALTER TABLE manifest_tombstones DROP COLUMN expired");
    raw.close();
    const upgraded = new SqliteMetadataStore({ path });
    try {
      assert.equal(await upgraded.referencedByManifest("repo", layer), true);
      assert.equal(await upgraded.listedByIndex("repo", child), true);
      assert.deepEqual(await upgraded.unreferencedBlobs([layer], "9"), []);
      // The tombstones know who wrote them again.
      await upgraded.unlinkBlob("repo", layer, "1700000000002.000000.test", { expired: true });
      assert.equal(await upgraded.servedByManifest("repo", layer), true);
      await upgraded.deleteManifest("repo", record.digest, "1700000000003.000000.test", {
        expired: true,
      });
      assert.equal(await upgraded.manifestExpired("repo", record.digest), true);
    } finally {
      await upgraded.close();
    }
    const check = new Database(path);
    const version = check.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get();
    check.close();
    assert.deepEqual(version, { value: "2" });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

it("SQLite store shared by several processes announces the other writers' commits too", async () => {
  // Two connections to one file stand for two worker processes of one replica.
  const dir = await mkdtemp(join(tmpdir(), "meridian-sqlite-"));
  const path = join(dir, "metadata.db");
  const watching = new SqliteMetadataStore({ path, sharedWith: { pollMs: 2 } });
  const other = new SqliteMetadataStore({ path });
  try {
    const seen: number[] = [];
    watching.onCommit((changes) => seen.push(...changes.map((c) => c.seq)));
    const stamp = (n: number) => `${1_700_000_000_000 + n}.000000.test`;
    const link = (n: number) => ({
      repository: "repo",
      digest: digestOf(Buffer.from(`blob ${n}`)),
      size: 1,
      stamp: stamp(n),
    });
    await other.linkBlob(link(0));
    await waitFor(() => seen.length === 1, "the other writer's commit announced here");
    // Both write at once, as two workers taking pushes; every record is announced here
    // exactly once, whichever process made it.
    const writes: Promise<boolean>[] = [];
    for (let n = 1; n <= 300; n += 1) writes.push((n % 2 ? other : watching).linkBlob(link(n)));
    await Promise.all(writes);
    await waitFor(() => seen.length === 301, "all 301 commits announced", 10_000, 5);
    const all = (await watching.changesSince(0, 1000)).map((c) => c.seq);
    assert.deepEqual(
      [...seen].sort((a, b) => a - b),
      all,
    );
    assert.equal(new Set(seen).size, seen.length, "none announced twice");
  } finally {
    await watching.close();
    await other.close();
    await rm(dir, { recursive: true, force: true });
  }
});

it("SQLite store finds a digest's tags, referrers and refs through an index, not by reading the whole repository", () => {
  const db = new Database(":memory:");
  try {
    db.exec(schema);
    const sql = prepareStatements(db);
    // Without statistics SQLite's planner took the primary key's (repository) prefix for
    // these: every manifest put read all the tags of its repository.
    const expected: [keyof typeof sql, RegExp][] = [
      [
        "refreshDigestTags",
        /SEARCH tags USING INDEX tags_by_digest \(repository=\? AND digest=\?\)/,
      ],
      ["manifestInUse", /SEARCH tags USING INDEX tags_by_digest \(repository=\? AND digest=\?\)/],
      ["manifestGraph", /SEARCH t USING INDEX tags_by_digest \(repository=\? AND digest=\?\)/],
      ["listReferrers", /USING INDEX manifests_by_subject \(repository=\? AND subject=\?\)/],
      [
        "deleteManifestRef",
        /\((repository=\? AND kind=\? AND target=\?|target=\? AND kind=\? AND repository=\?) AND manifest=\?\)/,
      ],
    ];
    for (const [name, pattern] of expected) {
      const statement = sql[name] as { source: string };
      // These statements take positional parameters only; the plan needs one value each.
      const values = Array((statement.source.match(/\?/g) ?? []).length).fill("x");
      const plan = (
        db.prepare(`EXPLAIN QUERY PLAN ${statement.source}`).all(...values) as { detail: string }[]
      ).map((row) => row.detail);
      assert.ok(
        plan.some((line) => pattern.test(line)),
        `${name}: ${plan.join(" | ")}`,
      );
    }
  } finally {
    db.close();
  }
});
