// The state digests and repository exports of the PostgreSQL metadata store. A state digest
// must be byte for byte the SQLite driver's for the same registers (replicas on different
// drivers compare them in anti-entropy): the same lines, hashed in the same order, which
// the bytewise collation of every key column guarantees.
import { createHash, type Hash } from "node:crypto";
import type pg from "pg";
import type { Digest } from "../oci/digest.ts";
import { type ControlRecord, controlRepository, type RepositoryExport } from "./metadata-store.ts";
import { sql } from "./postgres-statements.ts";

/** The state digest of a repository that holds no register at all. */
export const emptyStateDigest = `sha256:${createHash("sha256").digest("hex")}`;

type Query = <R extends pg.QueryResultRow>(text: string, values?: unknown[]) => Promise<R[]>;

interface StateRow {
  repository: string;
  digest: string | null;
  stamp: string;
}

/**
 * Hashes every register of one repository (or of all), section by section and in key
 * order within a section, as the SQLite driver does.
 */
export async function digestStates(
  query: Query,
  only: string | undefined,
): Promise<Map<string, string>> {
  const hashes = new Map<string, Hash>();
  const add = (repository: string, line: string) => {
    let hash = hashes.get(repository);
    if (!hash) {
      hash = createHash("sha256");
      hashes.set(repository, hash);
    }
    hash.update(line);
  };
  const scope = [only ?? null];
  for (const r of await query<StateRow & { tag: string }>(sql.stateTags, scope))
    add(r.repository, `t ${r.tag} ${r.digest ?? "-"} ${r.stamp}\n`);
  for (const r of await query<StateRow>(sql.stateManifests, scope))
    add(r.repository, `m ${r.digest} ${r.stamp}\n`);
  for (const r of await query<StateRow & { expired: boolean }>(
    sql.stateManifestTombstones,
    scope,
  )) {
    add(r.repository, `${r.expired ? "y" : "x"} ${r.digest} ${r.stamp}\n`);
  }
  for (const r of await query<StateRow & { linked: boolean; expired: boolean }>(
    sql.stateLinks,
    scope,
  )) {
    const kind = r.linked ? "l" : r.expired ? "e" : "u";
    add(r.repository, `${kind} ${r.digest} ${r.stamp}\n`);
  }
  if (only === undefined || only === controlRepository) {
    for (const r of await query<ControlRecord>(sql.allControls)) {
      add(controlRepository, `c ${r.kind} ${r.name} ${r.value ?? "-"} ${r.stamp}\n`);
    }
  }
  const names =
    only === undefined
      ? (await query<{ name: string }>(sql.listRepositories, ["", null])).map((r) => r.name)
      : [only];
  if (only === undefined && hashes.has(controlRepository)) names.push(controlRepository);
  const digests = new Map<string, string>();
  for (const name of names) {
    const hash = hashes.get(name);
    digests.set(name, hash ? `sha256:${hash.digest("hex")}` : emptyStateDigest);
  }
  return digests;
}

/** A repository's whole mergeable state, as the SQLite driver exports it. */
export async function exportRepository(
  query: Query,
  repository: string,
): Promise<RepositoryExport> {
  if (repository === controlRepository) {
    const controls = await query<ControlRecord>(sql.allControls);
    return { manifests: [], tags: [], tombstones: [], links: [], controls };
  }
  // One after the other: the queries share the snapshot's connection.
  const manifests = await query<{
    digest: Digest;
    media_type: string;
    bytes: Buffer;
    stamp: string;
  }>(sql.exportManifests, [repository]);
  const tags = await query<RepositoryExport["tags"][number]>(sql.exportTags, [repository]);
  const tombstones = await query<{ digest: Digest; stamp: string; expired: boolean }>(
    sql.exportTombstones,
    [repository],
  );
  const links = await query<{ digest: Digest; linked: boolean; stamp: string; expired: boolean }>(
    sql.exportLinks,
    [repository],
  );
  return {
    manifests: manifests.map((m) => ({
      digest: m.digest,
      mediaType: m.media_type,
      bytes: m.bytes,
      stamp: m.stamp,
    })),
    tags,
    tombstones: tombstones.map((t) =>
      t.expired
        ? { digest: t.digest, stamp: t.stamp, expired: true }
        : { digest: t.digest, stamp: t.stamp },
    ),
    links: links.map((l) =>
      l.expired
        ? { digest: l.digest, linked: false, stamp: l.stamp, expired: true }
        : { digest: l.digest, linked: l.linked, stamp: l.stamp },
    ),
  };
}
