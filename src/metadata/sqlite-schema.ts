// The SQLite schema of the metadata store, applied idempotently at open.
import type Database from "better-sqlite3";

export const schemaVersion = 2;

export const schema = `
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS repositories (
  name TEXT PRIMARY KEY
) WITHOUT ROWID;

-- Which repository may serve which blob; the bytes live once in the blob store. With
-- blob_link_tombstones a register per (repository, digest): a row in at most one of the
-- two tables, the newer stamp winning, so that an older link never revives a newer unlink.
CREATE TABLE IF NOT EXISTS blob_links (
  repository TEXT NOT NULL,
  digest     TEXT NOT NULL,
  size       INTEGER NOT NULL,
  stamp      TEXT NOT NULL,
  PRIMARY KEY (repository, digest)
) WITHOUT ROWID;

-- expired: 1 for an unlink the collector wrote (a stored manifest still serves the blob).
CREATE TABLE IF NOT EXISTS blob_link_tombstones (
  repository TEXT NOT NULL,
  digest     TEXT NOT NULL,
  stamp      TEXT NOT NULL,
  expired    INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (repository, digest)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS manifests (
  repository    TEXT NOT NULL,
  digest        TEXT NOT NULL,
  media_type    TEXT NOT NULL,
  bytes         BLOB NOT NULL,
  refs          TEXT NOT NULL,  -- JSON {"blobs":[...],"manifests":[...]}
  subject       TEXT,
  artifact_type TEXT,
  annotations   TEXT,           -- JSON object or NULL
  stamp         TEXT NOT NULL,
  PRIMARY KEY (repository, digest)
);
CREATE INDEX IF NOT EXISTS manifests_by_subject ON manifests (repository, subject)
  WHERE subject IS NOT NULL;

-- What each stored manifest references, one row per reference, kept with the manifest
-- row: kind 'b' a blob (config, layer), 'm' a child manifest (of an index). The collector
-- asks "does any manifest use this" by digest, and a blob a stored manifest uses stays
-- servable from its repository.
CREATE TABLE IF NOT EXISTS manifest_refs (
  repository TEXT NOT NULL,
  kind       TEXT NOT NULL,
  target     TEXT NOT NULL,
  manifest   TEXT NOT NULL,
  PRIMARY KEY (repository, kind, target, manifest)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS manifest_refs_by_target ON manifest_refs (target, kind);
CREATE INDEX IF NOT EXISTS blob_links_by_digest ON blob_links (digest);
CREATE INDEX IF NOT EXISTS blob_link_tombstones_by_digest ON blob_link_tombstones (digest);

-- expired: 1 for a retention delete (a region where an index lists the manifest re-puts it).
CREATE TABLE IF NOT EXISTS manifest_tombstones (
  repository TEXT NOT NULL,
  digest     TEXT NOT NULL,
  stamp      TEXT NOT NULL,
  expired    INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (repository, digest)
) WITHOUT ROWID;

-- A last-writer-wins register per tag; digest NULL is a tombstone. visible is derived, not
-- part of the register: 1 while the tag names a stored manifest and was written after that
-- manifest's newest delete (see tagVisibility), kept up to date by every write that can
-- change it, so that a listing reads one table.
CREATE TABLE IF NOT EXISTS tags (
  repository TEXT NOT NULL,
  tag        TEXT NOT NULL,
  digest     TEXT,
  stamp      TEXT NOT NULL,
  visible    INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (repository, tag)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tags_by_digest ON tags (repository, digest) WHERE digest IS NOT NULL;

-- Control-plane records (users, tokens, ...): a last-writer-wins register per (kind, name);
-- value NULL is a tombstone. Their change-log records name them as repository
-- "_control:<kind>" (never a repository name: names start with [a-z0-9]) and tag <name>.
CREATE TABLE IF NOT EXISTS control_records (
  kind  TEXT NOT NULL,
  name  TEXT NOT NULL,
  value TEXT,
  stamp TEXT NOT NULL,
  PRIMARY KEY (kind, name)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS changes (
  seq        INTEGER PRIMARY KEY AUTOINCREMENT,
  stamp      TEXT NOT NULL,
  kind       TEXT NOT NULL,
  repository TEXT NOT NULL,
  digest     TEXT,
  tag        TEXT,
  request    TEXT
);
`;

/**
 * Whether the row of `tags` being read or updated is visible: its register names a stored
 * manifest and is newer than that manifest's newest delete (a delete hides the tag writes
 * it followed). The one definition of tag visibility; `tags.visible` caches it.
 */
export const tagVisibility = `(
  tags.digest IS NOT NULL
  AND EXISTS (SELECT 1 FROM manifests m WHERE m.repository = tags.repository AND m.digest = tags.digest)
  AND tags.stamp > coalesce(
    (SELECT x.stamp FROM manifest_tombstones x
      WHERE x.repository = tags.repository AND x.digest = tags.digest), ''))`;

/** The manifest_refs rows of every stored manifest, from their `refs` JSON. */
const fillManifestRefs = `
INSERT OR IGNORE INTO manifest_refs (repository, kind, target, manifest)
  SELECT m.repository, 'b', j.value, m.digest FROM manifests m, json_each(m.refs, '$.blobs') j
  UNION ALL
  SELECT m.repository, 'm', j.value, m.digest FROM manifests m, json_each(m.refs, '$.manifests') j`;

/**
 * Brings a database created by an older version up to this schema, each step once and in
 * one transaction: `tags.visible` appeared after the first release; `manifest_refs`
 * (schema 2) is filled in from the manifests' `refs`; `blob_link_tombstones.expired`
 * and `manifest_tombstones.expired` (schema 2) are 0 for every delete written before;
 * `changes.request` (the client request of a change) is empty for the older records.
 */
export function upgradeSchema(db: Database.Database): void {
  const row = db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get() as
    | { value: string }
    | undefined;
  // A manifest_refs without kinds (made by a development build) is made again.
  const refColumns = db.pragma("table_info(manifest_refs)") as { name: string }[];
  if (!refColumns.some((column) => column.name === "kind")) {
    db.exec("DROP TABLE manifest_refs");
    db.exec(schema);
    db.exec(fillManifestRefs);
  }
  // No version row: a new database (nothing to fill), or one older than the row.
  if (row === undefined || Number(row.value) < 2) {
    db.transaction(() => {
      db.exec(fillManifestRefs);
      db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', '2')").run();
    }).immediate();
  }
  for (const table of ["blob_link_tombstones", "manifest_tombstones"]) {
    const tombstoneColumns = db.pragma(`table_info(${table})`) as { name: string }[];
    if (!tombstoneColumns.some((column) => column.name === "expired")) {
      db.exec(`ALTER TABLE ${table} ADD COLUMN expired INTEGER NOT NULL DEFAULT 0`);
    }
  }
  const changeColumns = db.pragma("table_info(changes)") as { name: string }[];
  if (!changeColumns.some((column) => column.name === "request")) {
    db.exec("ALTER TABLE changes ADD COLUMN request TEXT");
  }
  const columns = db.pragma("table_info(tags)") as { name: string }[];
  if (!columns.some((column) => column.name === "visible")) {
    db.transaction(() => {
      db.exec("ALTER TABLE tags ADD COLUMN visible INTEGER NOT NULL DEFAULT 0");
      db.exec(`UPDATE tags SET visible = ${tagVisibility}`);
    }).immediate();
  }
}
