// The PostgreSQL driver against a real throwaway server (one per file, a fresh schema per
// fixture): the shared suite unchanged, then what only a shared database has: two nodes
// over one schema, their change log, migrations at once, and digests equal to SQLite's.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, describe, it } from "node:test";
import pg from "pg";
import {
  type PostgresServer,
  postgresMissing,
  startPostgres,
} from "../../test/support/postgres-server.ts";
import { waitFor } from "../../test/support/wait-for.ts";
import { digestOf } from "../oci/digest.ts";
import { mediaTypes } from "../oci/media-types.ts";
import type { ChangeRecord, ManifestRecord, MetadataStore } from "./metadata-store.ts";
import { runMetadataStoreSuite } from "./metadata-store-suite.ts";
import { PostgresMetadataStore } from "./postgres-metadata-store.ts";
import { migrate, migrations, schemaVersion } from "./postgres-schema.ts";
import { SqliteMetadataStore } from "./sqlite-metadata-store.ts";

const missing = postgresMissing();
let server: Promise<PostgresServer> | undefined;
const serverUrl = async () => {
  server ??= startPostgres();
  return (await server).url;
};
after(async () => {
  await (await server)?.stop();
});

let schemas = 0;
const freshSchema = () => `t${++schemas}_${randomBytes(4).toString("hex")}`;

async function dropSchemas(names: readonly string[]): Promise<void> {
  const client = new pg.Client({ connectionString: await serverUrl() });
  await client.connect();
  try {
    for (const name of names) await client.query(`DROP SCHEMA IF EXISTS ${name} CASCADE`);
  } finally {
    await client.end();
  }
}

if (missing) {
  it("PostgreSQL metadata store", { skip: missing }, () => {});
} else {
  runMetadataStoreSuite("PostgreSQL", async () => {
    const url = await serverUrl();
    const schema = freshSchema();
    const open = (name: string) =>
      PostgresMetadataStore.open({ url, schema: name, onListenerError: () => {} });
    const store = await open(schema);
    const opened: PostgresMetadataStore[] = [store];
    const used = [schema];
    return {
      store,
      reopen: async () => {
        const again = await open(schema);
        opened.push(again);
        return again;
      },
      another: async () => {
        const name = freshSchema();
        used.push(name);
        const other = await open(name);
        opened.push(other);
        return other;
      },
      cleanup: async () => {
        for (const each of opened) await each.close();
        await dropSchemas(used);
      },
    };
  });

  describe("PostgreSQL metadata store on several nodes", () => {
    const stamp = (n: number) => `${String(1_700_000_000_000 + n).padStart(13, "0")}.000000.test`;
    const blob = (name: string) => digestOf(Buffer.from(name));

    /** Nodes over one fresh schema, closed and dropped after `body`. */
    async function withNodes(
      count: number,
      body: (nodes: PostgresMetadataStore[], schema: string) => Promise<void>,
    ): Promise<void> {
      const url = await serverUrl();
      const schema = freshSchema();
      const nodes: PostgresMetadataStore[] = [];
      try {
        for (let i = 0; i < count; i++) {
          nodes.push(await PostgresMetadataStore.open({ url, schema, onListenerError: () => {} }));
        }
        await body(nodes, schema);
      } finally {
        for (const node of nodes) await node.close();
        await dropSchemas([schema]);
      }
    }

    it("wakes the other node's commit listeners with the record", async () => {
      await withNodes(2, async ([a, b]) => {
        assert.ok(a && b);
        const seen: ChangeRecord[] = [];
        b.onCommit((changes) => seen.push(...changes));
        await a.linkBlob({ repository: "repo", digest: blob("x"), size: 1, stamp: stamp(1) });
        await waitFor(() => seen.length > 0, "the other node's listener");
        assert.deepEqual(seen, await a.changesSince(0, 10));
        assert.equal(seen[0]?.kind, "blob-link");
        assert.equal(seen[0]?.digest, blob("x"));
        assert.deepEqual(await b.getBlobLink("repo", blob("x")), { size: 1, stamp: stamp(1) });
        assert.equal(await b.logId(), await a.logId(), "one change log for the region");
      });
    });

    it("never lets a follower skip a seq while both nodes write at once", async () => {
      await withNodes(2, async ([a, b]) => {
        assert.ok(a && b);
        const heard = new Map<PostgresMetadataStore, number[]>([
          [a, []],
          [b, []],
        ]);
        for (const [node, seqs] of heard) {
          node.onCommit((changes) => seqs.push(...changes.map((c) => c.seq)));
        }
        // A follower reading as the writes commit: it must see every seq exactly once, in
        // order, although the writers' transactions overlap.
        const followed: number[] = [];
        let writing = true;
        const follow = (async () => {
          for (;;) {
            const done = !writing;
            const batch = await a.changesSince(followed.at(-1) ?? 0, 37);
            followed.push(...batch.map((c) => c.seq));
            if (done && batch.length === 0) return;
          }
        })();
        const perNode = 150;
        const writes = [a, b].flatMap((node, n) =>
          Array.from({ length: perNode }, (_, i) =>
            node.linkBlob({
              repository: `r${i % 7}`,
              digest: blob(`${n}-${i}`),
              size: 1,
              stamp: stamp(i),
            }),
          ),
        );
        await Promise.all(writes);
        writing = false;
        await follow;
        const all = Array.from({ length: 2 * perNode }, (_, i) => i + 1);
        assert.equal(await a.headSeq(), all.length);
        assert.deepEqual(followed, all);
        // Each node's listeners heard every commit, its own and the other's, once, in order.
        for (const seqs of heard.values()) {
          await waitFor(() => seqs.length >= all.length, "every commit announced");
          assert.deepEqual(seqs, all);
        }
      });
    });

    it("hears other nodes again after its listening connection drops", async () => {
      await withNodes(2, async ([a, b]) => {
        assert.ok(a && b);
        const seen: ChangeRecord[] = [];
        b.onCommit((changes) => seen.push(...changes));
        const pid = await b.listenerPid();
        const admin = new pg.Client({ connectionString: await serverUrl() });
        await admin.connect();
        try {
          await admin.query("SELECT pg_terminate_backend($1)", [pid]);
        } finally {
          await admin.end();
        }
        await a.setTag("repo", "t", blob("none"), stamp(1));
        await a.putManifest(manifestRecord(stamp(2)), "t");
        await waitFor(
          () => seen.some((c) => c.kind === "tag-put"),
          "a commit made while the listener was away",
        );
        assert.deepEqual(seen, await a.changesSince(0, 10));
        assert.notEqual(await b.listenerPid(), pid, "a new connection");
      });
    });

    it("migrates a fresh schema once when several nodes start at once", async () => {
      const url = await serverUrl();
      const schema = freshSchema();
      const nodes = await Promise.all(
        Array.from({ length: 4 }, () => PostgresMetadataStore.open({ url, schema })),
      );
      try {
        const ids = new Set(await Promise.all(nodes.map((node) => node.logId())));
        assert.equal(ids.size, 1, "one change-log identity");
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        try {
          const { rows } = await client.query(`SELECT version FROM ${schema}.schema_version`);
          assert.deepEqual(
            rows,
            migrations.map((step) => ({ version: step.version })),
          );
        } finally {
          await client.end();
        }
      } finally {
        for (const node of nodes) await node.close();
        await dropSchemas([schema]);
      }
    });

    it("upgrades a schema an older build made, and refuses one a newer build made", async () => {
      const url = await serverUrl();
      const schema = freshSchema();
      const pool = new pg.Pool({ connectionString: url, options: `-c search_path=${schema}` });
      try {
        // Schema 1: the change log had no request column yet.
        await migrate(pool, schema, migrations.slice(0, 1));
        await pool.query(
          `UPDATE change_head SET seq = 1;
           INSERT INTO changes (seq, stamp, kind, repository, digest, tag)
             VALUES (1, '${stamp(1)}', 'tag-delete', 'repo', NULL, 'old')`,
        );
        const store = await PostgresMetadataStore.open({ url, schema });
        try {
          assert.deepEqual(
            (await store.changesSince(0, 10)).map((c) => [c.seq, c.kind, c.tag, c.request]),
            [[1, "tag-delete", "old", undefined]],
          );
          const request = { id: "r", host: "h", method: "DELETE", useragent: "u" };
          await store.deleteTag("repo", "new", stamp(2), { request });
          assert.deepEqual((await store.changesSince(1, 10))[0]?.request, request);
        } finally {
          await store.close();
        }
        await pool.query("INSERT INTO schema_version (version) VALUES (99)");
        await assert.rejects(
          PostgresMetadataStore.open({ url, schema }),
          new RegExp(`at version 99, newer than this build's ${schemaVersion}`),
        );
      } finally {
        await pool.end();
        await dropSchemas([schema]);
      }
    });

    it("gives the SQLite driver's state digests for the same records", async () => {
      await withNodes(1, async ([postgres]) => {
        assert.ok(postgres);
        const sqlite = new SqliteMetadataStore({ path: ":memory:" });
        try {
          for (const store of [sqlite, postgres]) await sameRecords(store);
          const expected = await sqlite.stateDigests();
          assert.ok(expected.size > 4);
          assert.deepEqual(await postgres.stateDigests(), expected);
          for (const [repository, digest] of expected) {
            assert.equal(await postgres.stateDigest(repository), digest, repository);
          }
          for (const repository of ["a-b", "a/b", "A"]) {
            assert.deepEqual(
              await postgres.exportRepository(repository),
              await sqlite.exportRepository(repository),
            );
          }
          assert.deepEqual(await postgres.listTags("a/b", {}), await sqlite.listTags("a/b", {}));
          assert.deepEqual(await postgres.listRepositories({}), await sqlite.listRepositories({}));
          assert.equal(await postgres.stateDigest("never"), await sqlite.stateDigest("never"));
        } finally {
          await sqlite.close();
        }
      });
    });

    /** Registers of every kind, under names a language collation sorts differently. */
    async function sameRecords(store: MetadataStore): Promise<void> {
      const repositories = ["a/b", "a-b", "a.b", "a_b", "A", "b"];
      for (const [n, repository] of repositories.entries()) {
        const m = { ...manifestRecord(stamp(10 + n)), repository };
        await store.putManifest(m);
        for (const [i, tag] of ["a", "B", "_x", "1.0", "1-0", "Z"].entries()) {
          await store.setTag(repository, tag, m.digest, stamp(20 + i));
        }
        await store.deleteTag(repository, "Z", stamp(30));
        await store.linkBlob({ repository, digest: blob("l"), size: 3, stamp: stamp(1) });
        await store.linkBlob({ repository, digest: blob("k"), size: 3, stamp: stamp(2) });
        await store.unlinkBlob(repository, blob("k"), stamp(3), { expired: n % 2 === 0 });
        await store.unlinkBlob(repository, blob("u"), stamp(4));
        const gone = { ...manifestRecord(stamp(5), "gone"), repository };
        await store.putManifest(gone, "old");
        await store.deleteManifest(repository, gone.digest, stamp(6), { expired: n % 2 === 1 });
      }
      await store.putControlRecord({ kind: "user", name: "B", value: '{"v":1}', stamp: stamp(1) });
      await store.putControlRecord({ kind: "user", name: "a", value: null, stamp: stamp(2) });
      await store.putControlRecord({ kind: "token", name: "_t", value: "{}", stamp: stamp(3) });
    }

    function manifestRecord(at: string, body = "m"): ManifestRecord {
      const bytes = Buffer.from(JSON.stringify({ body }));
      return {
        repository: "repo",
        digest: digestOf(bytes),
        mediaType: mediaTypes.ociManifest,
        bytes,
        blobs: [blob("l")],
        manifests: [],
        stamp: at,
      };
    }
  });
}
