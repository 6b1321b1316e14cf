// The SQL the PostgreSQL metadata-store driver runs, one entry per statement of the SQLite
// driver's prepareStatements (same names), in PostgreSQL's dialect: upserts instead of
// INSERT OR REPLACE, booleans instead of 0/1, arrays (unnest ... WITH ORDINALITY, which
// keeps the caller's order and duplicates) where the SQLite driver loops over digests.
import { tagVisibility } from "./postgres-schema.ts";

/** A list of digests as one parameter, in order: `u.d`, numbered `u.n`. */
const digestList = "unnest($2::text[]) WITH ORDINALITY AS u(d, n)";

export const sql = {
  addRepository: "INSERT INTO repositories (name) VALUES ($1) ON CONFLICT DO NOTHING",
  repositoryExists: "SELECT 1 FROM repositories WHERE name = $1",
  // A link written over the register (the caller checked that it is newer): the
  // repository, the tombstone cleared and the link, in one statement.
  writeBlobLink: `WITH repository AS (
      INSERT INTO repositories (name) VALUES ($1) ON CONFLICT DO NOTHING),
    tombstone AS (DELETE FROM blob_link_tombstones WHERE repository = $1 AND digest = $2)
    INSERT INTO blob_links (repository, digest, size, stamp) VALUES ($1, $2, $3, $4)
    ON CONFLICT (repository, digest) DO UPDATE SET size = excluded.size, stamp = excluded.stamp`,
  // An unlink written over the register: the repository, the link removed (whether there
  // was one: removed) and the tombstone, in one statement.
  writeBlobUnlink: `WITH repository AS (
      INSERT INTO repositories (name) VALUES ($1) ON CONFLICT DO NOTHING),
    link AS (DELETE FROM blob_links WHERE repository = $1 AND digest = $2 RETURNING 1)
    INSERT INTO blob_link_tombstones (repository, digest, stamp, expired) VALUES ($1, $2, $3, $4)
    ON CONFLICT (repository, digest) DO UPDATE SET stamp = excluded.stamp, expired = excluded.expired
    RETURNING (SELECT count(*) FROM link) AS removed`,
  getBlobLink: "SELECT size, stamp FROM blob_links WHERE repository = $1 AND digest = $2",
  linkRegisterStamp: `SELECT max(stamp) AS stamp FROM (
      SELECT stamp FROM blob_links WHERE repository = $1 AND digest = $2
      UNION ALL
      SELECT stamp FROM blob_link_tombstones WHERE repository = $1 AND digest = $2) s`,
  manifestStamp: "SELECT stamp FROM manifests WHERE repository = $1 AND digest = $2",
  bumpManifestStamp: "UPDATE manifests SET stamp = $1 WHERE repository = $2 AND digest = $3",
  // The state digest's sections: one repository ($1) or all ($1 NULL).
  stateTags: `SELECT repository, tag, digest, stamp FROM tags
    WHERE $1::text IS NULL OR repository = $1 ORDER BY repository, tag`,
  stateManifests: `SELECT repository, digest, stamp FROM manifests
    WHERE $1::text IS NULL OR repository = $1 ORDER BY repository, digest`,
  stateManifestTombstones: `SELECT repository, digest, stamp, expired FROM manifest_tombstones
    WHERE $1::text IS NULL OR repository = $1 ORDER BY repository, digest`,
  stateLinks: `SELECT repository, digest, stamp, true AS linked, false AS expired FROM blob_links
      WHERE $1::text IS NULL OR repository = $1
    UNION ALL
    SELECT repository, digest, stamp, false AS linked, expired FROM blob_link_tombstones
      WHERE $1::text IS NULL OR repository = $1
    ORDER BY repository, digest`,
  getManifest:
    "SELECT digest, media_type, bytes, subject, stamp FROM manifests WHERE repository = $1 AND digest = $2",
  getTaggedManifest: `SELECT m.digest, m.media_type, m.bytes, m.subject, m.stamp, t.stamp AS tag_stamp
    FROM tags t JOIN manifests m ON m.repository = t.repository AND m.digest = t.digest
    WHERE t.repository = $1 AND t.tag = $2 AND t.visible`,
  manifestExists: "SELECT 1 FROM manifests WHERE repository = $1 AND digest = $2",
  missingManifests: `SELECT u.d AS digest FROM ${digestList}
    WHERE NOT EXISTS (SELECT 1 FROM manifests WHERE repository = $1 AND digest = u.d)
    ORDER BY u.n`,
  insertManifest: `INSERT INTO manifests
    (repository, digest, media_type, bytes, refs, subject, artifact_type, annotations, stamp)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING`,
  deleteManifest: "DELETE FROM manifests WHERE repository = $1 AND digest = $2",
  manifestTombstone:
    "SELECT stamp, expired FROM manifest_tombstones WHERE repository = $1 AND digest = $2",
  putManifestTombstone: `INSERT INTO manifest_tombstones (repository, digest, stamp, expired)
    VALUES ($1, $2, $3, $4)
    ON CONFLICT (repository, digest) DO UPDATE SET stamp = excluded.stamp, expired = excluded.expired`,
  // A tag write in one statement: the register takes the write only when its stamp is
  // newer (no row changes otherwise), and the write's visibility is the rule of
  // tagVisibility applied to the values written. The repository row exists whenever a tag
  // row does, so adding it whether or not the write wins changes nothing.
  writeTag: `WITH repository AS (
      INSERT INTO repositories (name) VALUES ($1) ON CONFLICT DO NOTHING)
    INSERT INTO tags (repository, tag, digest, stamp, visible)
    VALUES ($1, $2, $3, $4, $3::text IS NOT NULL
      AND EXISTS (SELECT 1 FROM manifests m WHERE m.repository = $1 AND m.digest = $3)
      AND $4 > coalesce((SELECT x.stamp FROM manifest_tombstones x
                          WHERE x.repository = $1 AND x.digest = $3), ''))
    ON CONFLICT (repository, tag) DO UPDATE
      SET digest = excluded.digest, stamp = excluded.stamp, visible = excluded.visible
      WHERE tags.stamp < excluded.stamp`,
  // Whether a tag may name the manifest: stored, or deleted (known here all the same).
  manifestKnown: `SELECT 1 WHERE EXISTS (SELECT 1 FROM manifests WHERE repository = $1 AND digest = $2)
    OR EXISTS (SELECT 1 FROM manifest_tombstones WHERE repository = $1 AND digest = $2)`,
  refreshDigestTags: `UPDATE tags SET visible = ${tagVisibility} WHERE repository = $1 AND digest = $2`,
  listTags:
    "SELECT tag FROM tags WHERE repository = $1 AND visible AND tag > $2 ORDER BY tag LIMIT $3",
  // The JSON array is built here so that a large listing needs no row object per tag;
  // string_agg rather than json_agg, whose text puts a space after each comma.
  listTagsJson: `SELECT '[' || coalesce(string_agg(to_json(tag)::text, ',' ORDER BY tag), '') || ']'
      AS json
    FROM tags WHERE repository = $1 AND visible`,
  listRepositories: "SELECT name FROM repositories WHERE name > $1 ORDER BY name LIMIT $2",
  listReferrers: `SELECT digest, media_type, length(bytes) AS size, artifact_type, annotations
    FROM manifests WHERE repository = $1 AND subject = $2 ORDER BY digest`,
  changesSince:
    "SELECT seq, stamp, kind, repository, digest, tag, request FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2",
  headSeq: "SELECT seq FROM change_head",
  exportManifests:
    "SELECT digest, media_type, bytes, stamp FROM manifests WHERE repository = $1 ORDER BY digest",
  exportTags: "SELECT tag, digest, stamp FROM tags WHERE repository = $1 ORDER BY tag",
  exportTombstones:
    "SELECT digest, stamp, expired FROM manifest_tombstones WHERE repository = $1 ORDER BY digest",
  exportLinks: `SELECT digest, true AS linked, stamp, false AS expired FROM blob_links
      WHERE repository = $1
    UNION ALL
    SELECT digest, false AS linked, stamp, expired FROM blob_link_tombstones WHERE repository = $1
    ORDER BY digest`,
  controlStamp: "SELECT stamp FROM control_records WHERE kind = $1 AND name = $2",
  putControl: `INSERT INTO control_records (kind, name, value, stamp) VALUES ($1, $2, $3, $4)
    ON CONFLICT (kind, name) DO UPDATE SET value = excluded.value, stamp = excluded.stamp`,
  controlsOfKind:
    "SELECT kind, name, value, stamp FROM control_records WHERE kind = $1 ORDER BY name",
  allControls: "SELECT kind, name, value, stamp FROM control_records ORDER BY kind, name",
  latestStamp: "SELECT max(stamp) AS stamp FROM changes",
  putManifestRefs: `INSERT INTO manifest_refs (repository, kind, target, manifest)
    SELECT $1, $2, t, $4 FROM unnest($3::text[]) AS t ON CONFLICT DO NOTHING`,
  deleteManifestRefs: "DELETE FROM manifest_refs WHERE repository = $1 AND manifest = $2",
  referencedByManifest:
    "SELECT 1 FROM manifest_refs WHERE repository = $1 AND kind = 'b' AND target = $2 LIMIT 1",
  listedByIndex:
    "SELECT 1 FROM manifest_refs WHERE repository = $1 AND kind = 'm' AND target = $2 LIMIT 1",
  // A client's unlink (expired false) keeps the blob unservable whatever references it.
  servedByManifest: `SELECT 1 WHERE EXISTS (SELECT 1 FROM manifest_refs
        WHERE repository = $1 AND kind = 'b' AND target = $2)
    AND NOT EXISTS (SELECT 1 FROM blob_link_tombstones
        WHERE repository = $1 AND digest = $2 AND NOT expired)`,
  missingBlobs: `SELECT u.d AS digest FROM ${digestList}
    WHERE NOT EXISTS (SELECT 1 FROM blob_links WHERE repository = $1 AND digest = u.d)
      AND NOT (EXISTS (SELECT 1 FROM manifest_refs
                        WHERE repository = $1 AND kind = 'b' AND target = u.d)
               AND NOT EXISTS (SELECT 1 FROM blob_link_tombstones
                        WHERE repository = $1 AND digest = u.d AND NOT expired))
    ORDER BY u.n`,
  expirableLinks: `SELECT l.repository, l.digest, l.size, l.stamp FROM blob_links l
    WHERE (l.repository, l.digest) > ($1, $2) AND l.stamp < $3
      AND NOT EXISTS (SELECT 1 FROM manifest_refs r
                       WHERE r.repository = l.repository AND r.kind = 'b' AND r.target = l.digest)
    ORDER BY l.repository, l.digest LIMIT $4`,
  // Anything that keeps a blob's bytes: a live link, a stored manifest, a recent unlink.
  unreferencedBlobs: `SELECT u.d AS digest FROM unnest($1::text[]) WITH ORDINALITY AS u(d, n)
    WHERE NOT EXISTS (SELECT 1 FROM blob_links WHERE digest = u.d)
      AND NOT EXISTS (SELECT 1 FROM manifest_refs WHERE target = u.d AND kind = 'b')
      AND NOT EXISTS (SELECT 1 FROM blob_link_tombstones WHERE digest = u.d AND stamp >= $2)
    ORDER BY u.n`,
  manifestGraph: `SELECT m.digest, m.stamp, length(m.bytes) AS size, m.subject,
      (m.refs::json -> 'manifests')::text AS children,
      EXISTS (SELECT 1 FROM tags t WHERE t.repository = m.repository
                AND t.digest = m.digest AND t.visible) AS tagged
    FROM manifests m WHERE m.repository = $1 ORDER BY m.digest`,
  // A manifest retention must keep whatever it decided: a visible tag, or a stored parent.
  manifestInUse: `SELECT 1 WHERE EXISTS (SELECT 1 FROM tags
        WHERE repository = $1 AND digest = $2 AND visible)
    OR EXISTS (SELECT 1 FROM manifest_refs WHERE repository = $1 AND kind = 'm' AND target = $2)`,
  repositoryUsage: `SELECT r.name AS repository,
      (SELECT count(*) FROM blob_links l WHERE l.repository = r.name) AS links,
      (SELECT coalesce(sum(size), 0) FROM blob_links l WHERE l.repository = r.name) AS linked_bytes,
      (SELECT count(*) FROM manifests m WHERE m.repository = r.name) AS manifests,
      (SELECT coalesce(sum(length(bytes)), 0) FROM manifests m WHERE m.repository = r.name)
        AS manifest_bytes
    FROM repositories r ORDER BY r.name`,
  storedBlobs: `SELECT count(*) AS blobs, coalesce(sum(size), 0) AS bytes
    FROM (SELECT digest, max(size) AS size FROM blob_links GROUP BY digest) b`,
  storedManifestBytes: `SELECT coalesce(sum(size), 0) AS bytes
    FROM (SELECT digest, max(length(bytes)) AS size FROM manifests GROUP BY digest) m`,
} as const;
