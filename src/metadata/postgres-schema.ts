// The PostgreSQL schema of the metadata store and its versioned migrations, run at open.
// The tables mirror sqlite-schema.ts column for column, so that both drivers hold the same
// registers and give the same state digests. Every text column compares bytewise
// (COLLATE "C", SQLite's BINARY): keys, stamps and the order the state digest hashes rows
// in must not depend on the database's locale.
import { randomUUID } from "node:crypto";
import type pg from "pg";

/** A text column that sorts and compares as SQLite's do. */
const text = `text COLLATE "C"`;

/** The tag-visibility rule of sqlite-schema.ts, for a row of `tags` being read or updated. */
export const tagVisibility = `(
  tags.digest IS NOT NULL
  AND EXISTS (SELECT 1 FROM manifests m WHERE m.repository = tags.repository AND m.digest = tags.digest)
  AND tags.stamp > coalesce(
    (SELECT x.stamp FROM manifest_tombstones x
      WHERE x.repository = tags.repository AND x.digest = tags.digest), ''))`;

/**
 * Each step once, in order, in its own transaction with its `schema_version` row. A step is
 * never edited once released: a change to the schema is a new step.
 */
export const migrations: readonly { version: number; sql: string }[] = [
  {
    version: 1,
    sql: `
CREATE TABLE meta (key ${text} PRIMARY KEY, value text NOT NULL);
CREATE TABLE repositories (name ${text} PRIMARY KEY);
-- With blob_link_tombstones a register per (repository, digest): a row in at most one of
-- the two tables, the newer stamp winning.
CREATE TABLE blob_links (
  repository ${text} NOT NULL,
  digest     ${text} NOT NULL,
  size       bigint NOT NULL,
  stamp      ${text} NOT NULL,
  PRIMARY KEY (repository, digest)
);
CREATE TABLE blob_link_tombstones (
  repository ${text} NOT NULL,
  digest     ${text} NOT NULL,
  stamp      ${text} NOT NULL,
  expired    boolean NOT NULL DEFAULT false,
  PRIMARY KEY (repository, digest)
);
CREATE TABLE manifests (
  repository    ${text} NOT NULL,
  digest        ${text} NOT NULL,
  media_type    text NOT NULL,
  bytes         bytea NOT NULL,
  refs          text NOT NULL,
  subject       ${text},
  artifact_type text,
  annotations   text,
  stamp         ${text} NOT NULL,
  PRIMARY KEY (repository, digest)
);
CREATE INDEX manifests_by_subject ON manifests (repository, subject) WHERE subject IS NOT NULL;
CREATE TABLE manifest_refs (
  repository ${text} NOT NULL,
  kind       ${text} NOT NULL,
  target     ${text} NOT NULL,
  manifest   ${text} NOT NULL,
  PRIMARY KEY (repository, kind, target, manifest)
);
CREATE INDEX manifest_refs_by_target ON manifest_refs (target, kind);
CREATE INDEX manifest_refs_by_manifest ON manifest_refs (repository, manifest);
CREATE INDEX blob_links_by_digest ON blob_links (digest);
CREATE INDEX blob_link_tombstones_by_digest ON blob_link_tombstones (digest);
CREATE TABLE manifest_tombstones (
  repository ${text} NOT NULL,
  digest     ${text} NOT NULL,
  stamp      ${text} NOT NULL,
  expired    boolean NOT NULL DEFAULT false,
  PRIMARY KEY (repository, digest)
);
CREATE TABLE tags (
  repository ${text} NOT NULL,
  tag        ${text} NOT NULL,
  digest     ${text},
  stamp      ${text} NOT NULL,
  visible    boolean NOT NULL DEFAULT false,
  PRIMARY KEY (repository, tag)
);
CREATE INDEX tags_by_digest ON tags (repository, digest) WHERE digest IS NOT NULL;
CREATE TABLE control_records (
  kind  ${text} NOT NULL,
  name  ${text} NOT NULL,
  value text,
  stamp ${text} NOT NULL,
  PRIMARY KEY (kind, name)
);
CREATE TABLE changes (
  seq        bigint PRIMARY KEY,
  stamp      ${text} NOT NULL,
  kind       text NOT NULL,
  repository ${text} NOT NULL,
  digest     ${text},
  tag        ${text}
);
-- The region's change-log head: one row, advanced by every transaction that appends
-- changes (see appendChanges in postgres-metadata-store.ts for why a row and not a sequence).
CREATE TABLE change_head (
  one boolean PRIMARY KEY DEFAULT true CHECK (one),
  seq bigint NOT NULL
);
INSERT INTO change_head (seq) VALUES (0);
`,
  },
  {
    // The client request that made a change (JSON text; empty for the older records).
    version: 2,
    sql: "ALTER TABLE changes ADD COLUMN request text",
  },
  {
    // The work of the region's leading node that must outlive it, so that the node taking
    // the lead after it died goes on where it stopped: where each peer's feed was applied
    // up to (replication/postgres-checkpoint-store.ts) and the webhook outbox
    // (webhooks/postgres-outbox-store.ts). Times are milliseconds since the epoch, as in
    // the SQLite files they mirror.
    version: 3,
    sql: `
CREATE TABLE replication_checkpoints (peer ${text} PRIMARY KEY, seq bigint NOT NULL, log text);
CREATE TABLE replication_transferred (peer ${text} PRIMARY KEY, bytes bigint NOT NULL);
CREATE TABLE webhook_events (
  seq        bigserial PRIMARY KEY,
  id         ${text} NOT NULL UNIQUE,
  webhook    ${text} NOT NULL,
  event_key  ${text} NOT NULL,
  repository ${text} NOT NULL,
  action     text NOT NULL,
  payload    text NOT NULL,
  state      text NOT NULL,
  attempts   integer NOT NULL DEFAULT 0,
  next_at    bigint NOT NULL,
  created_at bigint NOT NULL,
  UNIQUE (webhook, event_key)
);
CREATE INDEX webhook_events_heads ON webhook_events (state, webhook, repository, seq);
CREATE INDEX webhook_events_due ON webhook_events (state, next_at);
CREATE TABLE webhook_attempts (
  id         bigserial PRIMARY KEY,
  event_seq  bigint NOT NULL,
  at         bigint NOT NULL,
  status     integer,
  latency_ms integer NOT NULL,
  excerpt    text NOT NULL
);
CREATE INDEX webhook_attempts_by_event ON webhook_attempts (event_seq);
CREATE TABLE webhook_cursor (
  one boolean PRIMARY KEY DEFAULT true CHECK (one),
  seq bigint NOT NULL,
  log text NOT NULL
);
`,
  },
  {
    // Which node fetches a blob from the peers (replication/postgres-fetch-claims.ts), so
    // that a blob crosses to the region once however many of its nodes want it at once.
    version: 4,
    sql: `CREATE TABLE blob_fetch_claims (
  digest     ${text} PRIMARY KEY,
  holder     text NOT NULL,
  expires_at timestamptz NOT NULL
)`,
  },
];

/** The newest schema this build knows. */
export const schemaVersion = Math.max(...migrations.map((m) => m.version));

/** The first key of every advisory lock the driver takes (the second names what it locks). */
export const lockClass = 0x6d657264; // "merd"

/** A stable 32-bit key for an advisory lock on `name` (FNV-1a). */
export function lockKey(name: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(name)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193);
  }
  return hash | 0;
}

/** PostgreSQL schema names the driver accepts: used unquoted in search_path and DDL. */
export const schemaNamePattern = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Creates the schema and brings it to `schemaVersion`, holding a session advisory lock on
 * the schema's name meanwhile: nodes that start at once wait for each other, and each
 * step runs exactly once. Refuses a database a newer build has migrated. Returns the
 * change log's identity, made once with the schema. `steps`: for tests, an older build's.
 */
export async function migrate(
  pool: pg.Pool,
  schema: string,
  steps: readonly { version: number; sql: string }[] = migrations,
): Promise<string> {
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query(`SELECT pg_advisory_lock(${lockClass}, ${lockKey(`migrate:${schema}`)})`);
    try {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      await client.query(`SET search_path TO ${schema}`);
      await client.query(
        "CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
      );
      const { rows } = await client.query<{ version: number | null }>(
        "SELECT max(version) AS version FROM schema_version",
      );
      const current = rows[0]?.version ?? 0;
      const newest = Math.max(...steps.map((m) => m.version));
      if (current > newest) {
        throw new Error(
          `the metadata schema ${schema} is at version ${current}, newer than this build's ${newest}`,
        );
      }
      for (const step of steps.filter((m) => m.version > current)) {
        await client.query("BEGIN");
        try {
          await client.query(step.sql);
          await client.query("INSERT INTO schema_version (version) VALUES ($1)", [step.version]);
          await client.query("COMMIT");
        } catch (error) {
          await client.query("ROLLBACK");
          throw error;
        }
      }
      await client.query(
        "INSERT INTO meta (key, value) VALUES ('log_id', $1) ON CONFLICT DO NOTHING",
        [randomUUID()],
      );
      const logId = await client.query<{ value: string }>(
        "SELECT value FROM meta WHERE key = 'log_id'",
      );
      return logId.rows[0]?.value ?? "";
    } finally {
      await client.query(
        `SELECT pg_advisory_unlock(${lockClass}, ${lockKey(`migrate:${schema}`)})`,
      );
    }
  } catch (error) {
    broken = true;
    throw error;
  } finally {
    // A client that failed mid-migration may hold a half-done session: not reused.
    client.release(broken);
  }
}
