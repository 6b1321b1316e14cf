// The shared work stores on both drivers: SQLite files in a temporary folder, and the
// tables of a fresh schema in a throwaway PostgreSQL cluster (migrated by the metadata
// store, as at a node's start).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, it } from "node:test";
import pg from "pg";
import {
  type PostgresServer,
  postgresMissing,
  startPostgres,
} from "../../test/support/postgres-server.ts";
import { PostgresMetadataStore } from "../metadata/postgres-metadata-store.ts";
import { PostgresCheckpointStore } from "../replication/postgres-checkpoint-store.ts";
import { PostgresFetchClaims } from "../replication/postgres-fetch-claims.ts";
import { SqliteCheckpointStore } from "../replication/sqlite-checkpoint-store.ts";
import { SqliteFetchClaims } from "../replication/sqlite-fetch-claims.ts";
import { PostgresOutboxStore } from "../webhooks/postgres-outbox-store.ts";
import { SqliteOutboxStore } from "../webhooks/sqlite-outbox-store.ts";
import { runWorkStoresSuite } from "./shared-work-stores-suite.ts";

const fail = (error: unknown) => assert.fail(String(error));

runWorkStoresSuite("SQLite", async () => {
  const dir = await mkdtemp(join(tmpdir(), "meridian-work-"));
  const opened: { close(): Promise<void> }[] = [];
  const openBoth = () => {
    const checkpoints = new SqliteCheckpointStore(join(dir, "replication.db"));
    const outbox = new SqliteOutboxStore(join(dir, "webhooks.db"), { durable: false });
    opened.push(checkpoints, outbox);
    return { checkpoints, outbox };
  };
  return {
    ...openBoth(),
    reopen: async () => openBoth(),
    claimsOfAnotherProcess: async (ttlMs) => {
      const claims = new SqliteFetchClaims(join(dir, "replication.db"), fail, ttlMs);
      opened.push(claims);
      return claims;
    },
    cleanup: async () => {
      for (const store of opened) await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

const missing = postgresMissing();
let server: Promise<PostgresServer> | undefined;
after(async () => {
  await (await server)?.stop();
});

if (missing) {
  it("shared work stores: PostgreSQL", { skip: missing }, () => {});
} else {
  runWorkStoresSuite("PostgreSQL", async () => {
    server ??= startPostgres();
    const { url } = await server;
    const schema = `w_${randomBytes(4).toString("hex")}`;
    const metadata = await PostgresMetadataStore.open({ url, schema, onListenerError: () => {} });
    const pools: pg.Pool[] = [];
    const openBoth = () => {
      const pool = new pg.Pool({ connectionString: url, options: `-c search_path=${schema}` });
      pools.push(pool);
      return {
        checkpoints: new PostgresCheckpointStore(pool),
        outbox: new PostgresOutboxStore(pool),
      };
    };
    return {
      ...openBoth(),
      reopen: async () => openBoth(),
      claimsOfAnotherProcess: async (ttlMs) => {
        const pool = new pg.Pool({ connectionString: url, options: `-c search_path=${schema}` });
        pools.push(pool);
        return new PostgresFetchClaims(pool, fail, ttlMs);
      },
      cleanup: async () => {
        for (const pool of pools) await pool.end();
        await metadata.close();
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        await client.query(`DROP SCHEMA ${schema} CASCADE`);
        await client.end();
      },
    };
  });
}
