// One write of the PostgreSQL metadata store, on the connection that holds its transaction:
// the register rules of the SQLite driver (a newer stamp wins, tombstones, tag visibility)
// step for step, and the change-log rows the write makes, appended at its end.
import type pg from "pg";
import type { Digest } from "../oci/digest.ts";
import type { ChangeKind, ChangeRequest, ManifestRecord, Stamp } from "./metadata-store.ts";
import { changesChannel } from "./postgres-change-feed.ts";
import { sql } from "./postgres-statements.ts";

/** A change-log row before it has its seq. */
export interface PendingChange {
  stamp: Stamp;
  kind: ChangeKind;
  repository: string;
  digest: string | null;
  tag: string | null;
  /** The client request that made the change, as JSON text. */
  request: string | null;
}

export class WriteTransaction {
  readonly changes: PendingChange[] = [];

  constructor(private readonly client: pg.PoolClient) {}

  async rows<R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<R[]> {
    return (await this.client.query<R>(text, values)).rows;
  }

  async exists(text: string, values: unknown[]): Promise<boolean> {
    return (await this.client.query(text, values)).rowCount !== 0;
  }

  /** Runs a write; how many rows it changed. */
  async run(text: string, values: unknown[]): Promise<number> {
    return (await this.client.query(text, values)).rowCount ?? 0;
  }

  record(
    stamp: Stamp,
    kind: ChangeKind,
    repository: string,
    digest?: Digest,
    tag?: string,
    request?: ChangeRequest,
  ): void {
    this.changes.push({
      stamp,
      kind,
      repository,
      digest: digest ?? null,
      tag: tag ?? null,
      request: request ? JSON.stringify(request) : null,
    });
  }

  /** The stamp of the link register: the live link's, or its tombstone's. */
  async linkRegisterStamp(repository: string, digest: Digest): Promise<Stamp | undefined> {
    const [row] = await this.rows<{ stamp: string | null }>(sql.linkRegisterStamp, [
      repository,
      digest,
    ]);
    return row?.stamp ?? undefined;
  }

  async tombstoneStamp(repository: string, digest: Digest): Promise<Stamp | undefined> {
    const [row] = await this.rows<{ stamp: string }>(sql.manifestTombstone, [repository, digest]);
    return row?.stamp;
  }

  async manifestStamp(repository: string, digest: Digest): Promise<Stamp | undefined> {
    const [row] = await this.rows<{ stamp: string }>(sql.manifestStamp, [repository, digest]);
    return row?.stamp;
  }

  /**
   * A manifest is visible while its newest put is newer than its newest delete. A put no
   * newer than the tombstone is dead on arrival and changes nothing.
   */
  async applyManifestPut(manifest: ManifestRecord): Promise<void> {
    const { repository, digest, stamp } = manifest;
    await this.run(sql.addRepository, [repository]);
    const tombstone = await this.tombstoneStamp(repository, digest);
    if (tombstone !== undefined && tombstone >= stamp) return;
    const current = await this.manifestStamp(repository, digest);
    if (current !== undefined) {
      if (current >= stamp) return;
      await this.run(sql.bumpManifestStamp, [stamp, repository, digest]);
    } else {
      await this.run(sql.insertManifest, [
        repository,
        digest,
        manifest.mediaType,
        manifest.bytes,
        JSON.stringify({ blobs: manifest.blobs, manifests: manifest.manifests }),
        manifest.subject ?? null,
        manifest.artifactType ?? null,
        manifest.annotations ? JSON.stringify(manifest.annotations) : null,
        stamp,
      ]);
      if (manifest.blobs.length > 0) {
        await this.run(sql.putManifestRefs, [
          repository,
          "b",
          [...new Set(manifest.blobs)],
          digest,
        ]);
      }
      if (manifest.manifests.length > 0) {
        const children = [...new Set(manifest.manifests)];
        await this.run(sql.putManifestRefs, [repository, "m", children, digest]);
      }
      await this.run(sql.refreshDigestTags, [repository, digest]);
    }
    this.record(stamp, "manifest-put", repository, digest, undefined, manifest.request);
  }

  /**
   * A tag is a last-writer-wins register of (digest or deleted, stamp). Whether it is
   * visible also depends on its manifest: the manifest writes refresh it.
   */
  async applyTagWrite(
    repository: string,
    tag: string,
    digest: Digest | null,
    stamp: Stamp,
    request: ChangeRequest | undefined,
  ): Promise<boolean> {
    if ((await this.run(sql.writeTag, [repository, tag, digest, stamp])) === 0) return false;
    const kind = digest === null ? "tag-delete" : "tag-put";
    this.record(stamp, kind, repository, digest ?? undefined, tag, request);
    return true;
  }

  async applyManifestDelete(
    repository: string,
    digest: Digest,
    stamp: Stamp,
    expired: boolean,
    request?: ChangeRequest,
  ): Promise<boolean> {
    const tombstone = await this.tombstoneStamp(repository, digest);
    if (tombstone !== undefined && tombstone >= stamp) return false;
    // The tombstone also hides every tag write to this manifest older than the delete,
    // whatever order the writes arrive in.
    await this.run(sql.putManifestTombstone, [repository, digest, stamp, expired]);
    const kind = expired ? "manifest-expire" : "manifest-delete";
    this.record(stamp, kind, repository, digest, undefined, request);
    const current = await this.manifestStamp(repository, digest);
    const removed = current !== undefined && current < stamp;
    if (removed) {
      await this.run(sql.deleteManifest, [repository, digest]);
      await this.run(sql.deleteManifestRefs, [repository, digest]);
    }
    await this.run(sql.refreshDigestTags, [repository, digest]);
    return removed;
  }

  /**
   * Commits. A write with change rows appends them, notifies every node and commits in
   * one round trip (a simple query of two statements, hence values as quoted literals).
   * The seqs come from the one-row change_head table, not from a sequence: a sequence
   * hands numbers out at insert time, so with concurrent transactions seq 8 may commit before seq 7, and a
   * follower that read up to 8 would never read 7. Updating the head row locks it until
   * the commit, so the next writer takes its seqs only after this transaction committed
   * (or rolled back): seqs become visible in order, without gaps. Returns the new head
   * (undefined: the write changed nothing).
   */
  async commit(schema: string): Promise<number | undefined> {
    const { client, changes } = this;
    if (changes.length === 0) {
      await client.query("COMMIT");
      return undefined;
    }
    const literal = (value: string | null) =>
      value === null ? "NULL" : client.escapeLiteral(value);
    const column = (key: keyof PendingChange) =>
      `ARRAY[${changes.map((c) => literal(c[key])).join(",")}]::text[]`;
    const n = changes.length;
    const results = (await client.query(
      `WITH head AS (UPDATE change_head SET seq = seq + ${n} RETURNING seq),
       added AS (
         INSERT INTO changes (seq, stamp, kind, repository, digest, tag, request)
         SELECT head.seq - ${n} + c.n, c.stamp, c.kind, c.repository, c.digest, c.tag, c.request
         FROM head, unnest(${column("stamp")}, ${column("kind")}, ${column("repository")},
                           ${column("digest")}, ${column("tag")}, ${column("request")})
           WITH ORDINALITY AS c(stamp, kind, repository, digest, tag, request, n))
       SELECT seq, pg_notify('${changesChannel}', ${literal(schema)} || ':' || seq) FROM head;
       COMMIT`,
    )) as unknown as pg.QueryResult<{ seq: string }>[];
    return Number(results[0]?.rows[0]?.seq);
  }
}
