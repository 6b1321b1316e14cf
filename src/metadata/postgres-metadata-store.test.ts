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
import { runMetadataStoreSuite } from "./metadata-store-suite.ts";
import { PostgresMetadataStore } from "./postgres-metadata-store.ts";

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
}
