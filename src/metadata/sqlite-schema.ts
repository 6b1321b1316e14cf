// The SQLite schema of the metadata store, applied idempotently at open.

export const schemaVersion = 1;

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

CREATE TABLE IF NOT EXISTS blob_link_tombstones (
  repository TEXT NOT NULL,
  digest     TEXT NOT NULL,
  stamp      TEXT NOT NULL,
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

CREATE TABLE IF NOT EXISTS manifest_tombstones (
  repository TEXT NOT NULL,
  digest     TEXT NOT NULL,
  stamp      TEXT NOT NULL,
  PRIMARY KEY (repository, digest)
) WITHOUT ROWID;

-- A last-writer-wins register per tag; digest NULL is a tombstone.
CREATE TABLE IF NOT EXISTS tags (
  repository TEXT NOT NULL,
  tag        TEXT NOT NULL,
  digest     TEXT,
  stamp      TEXT NOT NULL,
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
  tag        TEXT
);
`;
