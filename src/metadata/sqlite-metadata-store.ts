// The SQLite metadata-store driver (better-sqlite3, WAL; durable: a write is acknowledged
// once its commit is flushed to disk, by sqlite-wal-sync.ts off the event loop, so that it
// survives power loss). Each domain operation runs as one synchronous
// transaction inside an async method, so callers see the same promise-based interface a
// PostgreSQL driver will offer.
import { createHash, type Hash, randomUUID } from "node:crypto";
import Database from "better-sqlite3";
import type { Digest } from "../oci/digest.ts";
import type { WalDatabase } from "../storage/wal-database.ts";
import {
  changeRecord,
  controlPrefix,
  type ManifestRow,
  toStoredManifest,
} from "./metadata-rows.ts";
import type {
  BlobLink,
  ChangeKind,
  ChangeRecord,
  ChangeRequest,
  CommitListener,
  ControlRecord,
  LinkKey,
  LinkRow,
  ManifestNode,
  ManifestRecord,
  MetadataStore,
  Page,
  Referrer,
  RepositoryExport,
  RepositoryUsage,
  Stamp,
  StoredManifest,
  WriteOptions,
} from "./metadata-store.ts";
import { controlRepository } from "./metadata-store.ts";
import { SqliteCommitWatch } from "./sqlite-commit-watch.ts";
import { configureConnection, metadataCacheKiB } from "./sqlite-connection.ts";
import { schema, schemaVersion, tagVisibility, upgradeSchema } from "./sqlite-schema.ts";
import { SqliteWalSync } from "./sqlite-wal-sync.ts";

export interface SqliteMetadataStoreOptions {
  /** Database file path; ":memory:" for a throwaway store. */
  path: string;
  /** Flush each commit to disk before acknowledging it (default), or not (faster, may lose
   * the last commits on power loss). */
  durable?: boolean;
  /** Told of a commit listener that threw (default: one line on stderr). */
  onListenerError?: (error: unknown) => void;
  /**
   * Other processes write this file too (the nodes of one replica): their commits are
   * announced to this store's listeners as well, looked for every `pollMs`.
   */
  sharedWith?: { pollMs: number } | undefined;
}

type Statement = Database.Statement<unknown[], unknown>;

/** The state digest of a repository that holds no register at all. */
const emptyStateDigest = `sha256:${createHash("sha256").digest("hex")}`;

interface QueuedWrite {
  work: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

interface WriteOutcome {
  ok: boolean;
  value?: unknown;
  error?: unknown;
  records: ChangeRecord[];
}

export class SqliteMetadataStore implements MetadataStore {
  private readonly db: Database.Database;
  private readonly listeners = new Set<CommitListener>();
  private readonly sql: ReturnType<typeof prepareStatements>;
  private pending: ChangeRecord[] = [];
  private queue: QueuedWrite[] = [];
  /**
   * A batch's transaction and each write's savepoint, built once: better-sqlite3 builds a
   * transaction function anew on every `db.transaction` call, which was 1.9% of the main
   * thread's samples in small-image pushes when each write built its own.
   */
  private readonly commitBatch: (batch: QueuedWrite[]) => WriteOutcome[];
  private readonly inSavepoint: (work: () => unknown) => unknown;
  private flushScheduled = false;
  private readonly onListenerError: (error: unknown) => void;
  private readonly watch: SqliteCommitWatch | undefined;
  /** Flushes the WAL after each commit (durable file stores only). */
  private readonly walSync: SqliteWalSync | undefined;

  constructor(options: SqliteMetadataStoreOptions) {
    this.onListenerError =
      options.onListenerError ??
      ((error) => console.error(`metadata commit listener failed: ${String(error)}`));
    this.db = new Database(options.path);
    // synchronous=NORMAL: a commit writes the WAL without flushing it; walSync flushes it
    // off the event loop before the commit is acknowledged.
    configureConnection(this.db, metadataCacheKiB);
    const inMemory = options.path === ":memory:" || options.path === "";
    this.walSync =
      options.durable !== false && !inMemory ? new SqliteWalSync(`${options.path}-wal`) : undefined;
    this.db.exec(schema);
    upgradeSchema(this.db);
    this.db
      .prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('log_id', ?)")
      .run(randomUUID());
    this.db
      .prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)")
      .run(String(schemaVersion));
    this.sql = prepareStatements(this.db);
    this.inSavepoint = this.db.transaction((work: () => unknown) => work());
    this.commitBatch = this.db.transaction((batch: QueuedWrite[]) =>
      batch.map((item): WriteOutcome => {
        this.pending = [];
        try {
          const value = this.inSavepoint(item.work);
          return { ok: true, value, records: this.pending };
        } catch (error) {
          return { ok: false, error, records: [] };
        }
      }),
    ).immediate;
    if (options.sharedWith) {
      const head = this.sql.headSeq.get() as { seq: number | null };
      this.watch = new SqliteCommitWatch(
        {
          db: this.db,
          read: (since, limit) => this.readChanges(since, limit),
          announce: (records) => this.announce(records),
          pollMs: options.sharedWith.pollMs,
        },
        head.seq ?? 0,
      );
    }
  }

  /**
   * This store's file for the blob store's small-blob table (small-blob-table.ts): its rows
   * are written between the batches on this connection, and `flushed` is the flush that
   * every commit of the store waits for. The store keeps the file's lifetime.
   */
  database(): WalDatabase {
    return {
      db: this.db,
      flushed: async () => {
        await this.walSync?.sync();
      },
      close: async () => undefined,
    };
  }

  async linkBlob(link: BlobLink): Promise<boolean> {
    return this.transact(() => {
      const current = this.linkRegisterStamp(link.repository, link.digest);
      if (current !== undefined && current >= link.stamp) return false;
      this.sql.addRepository.run(link.repository);
      this.sql.clearBlobLinkTombstone.run(link.repository, link.digest);
      this.sql.putBlobLink.run(link.repository, link.digest, link.size, link.stamp);
      this.record(link.stamp, "blob-link", link.repository, link.digest);
      return true;
    });
  }

  async getBlobLink(
    repository: string,
    digest: Digest,
  ): Promise<{ size: number; stamp: Stamp } | undefined> {
    return this.sql.getBlobLink.get(repository, digest) as
      | { size: number; stamp: Stamp }
      | undefined;
  }

  async blobLinkStamp(repository: string, digest: Digest): Promise<Stamp | undefined> {
    return this.linkRegisterStamp(repository, digest);
  }

  async unlinkBlob(
    repository: string,
    digest: Digest,
    stamp: Stamp,
    options: { expired?: boolean } = {},
  ): Promise<boolean> {
    return this.transact(() => {
      const current = this.linkRegisterStamp(repository, digest);
      if (current !== undefined && current >= stamp) return false;
      this.sql.addRepository.run(repository);
      const removed = this.sql.unlinkBlob.run(repository, digest).changes > 0;
      const expired = options.expired ?? false;
      this.sql.putBlobLinkTombstone.run(repository, digest, stamp, expired ? 1 : 0);
      this.record(stamp, expired ? "blob-expire" : "blob-unlink", repository, digest);
      return removed;
    });
  }

  /** The stamp of the link register: the live link's, or its tombstone's. */
  private linkRegisterStamp(repository: string, digest: Digest): Stamp | undefined {
    const row = this.sql.linkRegisterStamp.get(repository, digest, repository, digest) as
      | { stamp: string | null }
      | undefined;
    return row?.stamp ?? undefined;
  }

  async missingBlobs(repository: string, digests: readonly Digest[]): Promise<Digest[]> {
    return digests.filter(
      (digest) =>
        this.sql.getBlobLink.get(repository, digest) === undefined &&
        this.sql.servedByManifest.get(repository, digest, repository, digest) === undefined,
    );
  }

  async servedByManifest(repository: string, digest: Digest): Promise<boolean> {
    return this.sql.servedByManifest.get(repository, digest, repository, digest) !== undefined;
  }

  async referencedByManifest(repository: string, digest: Digest): Promise<boolean> {
    return this.sql.referencedByManifest.get(repository, digest) !== undefined;
  }

  async listedByIndex(repository: string, digest: Digest): Promise<boolean> {
    return this.sql.listedByIndex.get(repository, digest) !== undefined;
  }

  async expirableLinks(
    olderThan: Stamp,
    after: LinkKey | undefined,
    limit: number,
  ): Promise<LinkRow[]> {
    return this.sql.expirableLinks.all({
      olderThan,
      repository: after?.repository ?? "",
      digest: after?.digest ?? "",
      limit,
    }) as LinkRow[];
  }

  async expireBlobLink(key: LinkKey, linkStamp: Stamp, stamp: Stamp): Promise<boolean> {
    return this.transact(() => {
      const { repository, digest } = key;
      const link = this.sql.getBlobLink.get(repository, digest) as { stamp: string } | undefined;
      if (link?.stamp !== linkStamp || link.stamp >= stamp) return false;
      if (this.sql.referencedByManifest.get(repository, digest) !== undefined) return false;
      this.sql.unlinkBlob.run(repository, digest);
      this.sql.putBlobLinkTombstone.run(repository, digest, stamp, 1);
      this.record(stamp, "blob-expire", repository, digest);
      return true;
    });
  }

  async unreferencedBlobs(digests: readonly Digest[], olderThan: Stamp): Promise<Digest[]> {
    return digests.filter(
      (digest) => this.sql.blobReferenced.get({ digest, olderThan }) === undefined,
    );
  }

  async manifestGraph(repository: string): Promise<ManifestNode[]> {
    const rows = this.sql.manifestGraph.all(repository) as {
      digest: Digest;
      stamp: string;
      size: number;
      tagged: number;
      children: string;
      subject: Digest | null;
    }[];
    return rows.map((row) => ({
      digest: row.digest,
      stamp: row.stamp,
      size: row.size,
      tagged: row.tagged === 1,
      children: JSON.parse(row.children) as Digest[],
      subject: row.subject ?? undefined,
    }));
  }

  async expireManifest(
    repository: string,
    digest: Digest,
    putStamp: Stamp,
    stamp: Stamp,
  ): Promise<boolean> {
    return this.transact(() => {
      const current = this.sql.manifestStamp.get(repository, digest) as
        | { stamp: string }
        | undefined;
      if (current?.stamp !== putStamp || current.stamp >= stamp) return false;
      if (this.sql.manifestInUse.get(repository, digest, repository, digest) !== undefined) {
        return false;
      }
      return this.applyManifestDelete(repository, digest, stamp, true);
    });
  }

  async repositoryUsage(): Promise<RepositoryUsage[]> {
    return this.sql.repositoryUsage.all() as RepositoryUsage[];
  }

  async missingManifests(repository: string, digests: readonly Digest[]): Promise<Digest[]> {
    return digests.filter((d) => this.sql.manifestExists.get(repository, d) === undefined);
  }

  async putManifest(manifest: ManifestRecord, tag?: string): Promise<void> {
    await this.transact(() => {
      this.applyManifestPut(manifest);
      if (tag !== undefined) {
        this.applyTagWrite(
          manifest.repository,
          tag,
          manifest.digest,
          manifest.stamp,
          manifest.request,
        );
      }
    });
  }

  async setTag(
    repository: string,
    tag: string,
    digest: Digest,
    stamp: Stamp,
    options: WriteOptions = {},
  ): Promise<boolean> {
    return this.transact(() => {
      const known =
        this.sql.manifestExists.get(repository, digest) !== undefined ||
        this.tombstoneStamp(repository, digest) !== undefined;
      if (!known) return false;
      this.applyTagWrite(repository, tag, digest, stamp, options.request);
      return true;
    });
  }

  /**
   * A manifest is visible while its newest put is newer than its newest delete. A put no
   * newer than the tombstone is dead on arrival and changes nothing.
   */
  private applyManifestPut(manifest: ManifestRecord): void {
    const { repository, digest, stamp } = manifest;
    this.sql.addRepository.run(repository);
    const tombstone = this.tombstoneStamp(repository, digest);
    if (tombstone !== undefined && tombstone >= stamp) return;
    const current = this.sql.manifestStamp.get(repository, digest) as { stamp: string } | undefined;
    if (current) {
      if (current.stamp >= stamp) return;
      this.sql.bumpManifestStamp.run(stamp, repository, digest);
    } else {
      this.sql.insertManifest.run(
        repository,
        digest,
        manifest.mediaType,
        manifest.bytes,
        JSON.stringify({ blobs: manifest.blobs, manifests: manifest.manifests }),
        manifest.subject ?? null,
        manifest.artifactType ?? null,
        manifest.annotations ? JSON.stringify(manifest.annotations) : null,
        stamp,
      );
      for (const blob of new Set(manifest.blobs)) {
        this.sql.putManifestRef.run(repository, "b", blob, digest);
      }
      for (const child of new Set(manifest.manifests)) {
        this.sql.putManifestRef.run(repository, "m", child, digest);
      }
      this.sql.refreshDigestTags.run(repository, digest);
    }
    this.record(stamp, "manifest-put", repository, digest, undefined, manifest.request);
  }

  /**
   * A tag is a last-writer-wins register of (digest or deleted, stamp). Whether it is
   * visible also depends on its manifest (`tagVisibility`): the manifest writes refresh it.
   */
  private applyTagWrite(
    repository: string,
    tag: string,
    digest: Digest | null,
    stamp: Stamp,
    request: ChangeRequest | undefined,
  ): boolean {
    const current = this.sql.getTag.get(repository, tag) as { stamp: string } | undefined;
    if (current && current.stamp >= stamp) return false;
    this.sql.addRepository.run(repository);
    this.sql.putTag.run(repository, tag, digest, stamp);
    this.sql.refreshTag.run(repository, tag);
    this.record(
      stamp,
      digest === null ? "tag-delete" : "tag-put",
      repository,
      digest ?? undefined,
      tag,
      request,
    );
    return true;
  }

  /**
   * By primary key, one per reference the manifest row lists (before the row goes): no
   * index leads from a manifest to its refs, and (repository, manifest) alone searched
   * every ref of the repository.
   */
  private deleteManifestRefs(repository: string, digest: Digest): void {
    const json = this.sql.manifestRefs.get(repository, digest) as string | undefined;
    if (json === undefined) return;
    const refs = JSON.parse(json) as { blobs?: string[]; manifests?: string[] };
    for (const blob of refs.blobs ?? []) {
      this.sql.deleteManifestRef.run(repository, "b", blob, digest);
    }
    for (const child of refs.manifests ?? []) {
      this.sql.deleteManifestRef.run(repository, "m", child, digest);
    }
  }

  private tombstoneStamp(repository: string, digest: Digest): string | undefined {
    const row = this.sql.manifestTombstone.get(repository, digest) as { stamp: string } | undefined;
    return row?.stamp;
  }

  async getManifest(repository: string, digest: Digest): Promise<StoredManifest | undefined> {
    return toStoredManifest(
      this.sql.getManifest.get(repository, digest) as ManifestRow | undefined,
    );
  }

  async getTaggedManifest(repository: string, tag: string): Promise<StoredManifest | undefined> {
    return toStoredManifest(
      this.sql.getTaggedManifest.get(repository, tag) as ManifestRow | undefined,
    );
  }

  async deleteManifest(
    repository: string,
    digest: Digest,
    stamp: Stamp,
    options: { expired?: boolean } & WriteOptions = {},
  ): Promise<boolean> {
    return this.transact(() =>
      this.applyManifestDelete(
        repository,
        digest,
        stamp,
        options.expired ?? false,
        options.request,
      ),
    );
  }

  async manifestExpired(repository: string, digest: Digest): Promise<boolean | undefined> {
    const row = this.sql.manifestTombstone.get(repository, digest) as
      | { expired: number }
      | undefined;
    return row === undefined ? undefined : row.expired === 1;
  }

  private applyManifestDelete(
    repository: string,
    digest: Digest,
    stamp: Stamp,
    expired: boolean,
    request?: ChangeRequest,
  ): boolean {
    const tombstone = this.tombstoneStamp(repository, digest);
    if (tombstone !== undefined && tombstone >= stamp) return false;
    // The tombstone also hides every tag write to this manifest older than the delete,
    // whatever order the writes arrive in.
    this.sql.putManifestTombstone.run(repository, digest, stamp, expired ? 1 : 0);
    this.record(
      stamp,
      expired ? "manifest-expire" : "manifest-delete",
      repository,
      digest,
      undefined,
      request,
    );
    const current = this.sql.manifestStamp.get(repository, digest) as { stamp: string } | undefined;
    const removed = current !== undefined && current.stamp < stamp;
    if (removed) {
      this.deleteManifestRefs(repository, digest);
      this.sql.deleteManifest.run(repository, digest);
    }
    this.sql.refreshDigestTags.run(repository, digest);
    return removed;
  }

  async deleteTag(
    repository: string,
    tag: string,
    stamp: Stamp,
    options: WriteOptions = {},
  ): Promise<boolean> {
    return this.transact(() => this.applyTagWrite(repository, tag, null, stamp, options.request));
  }

  async stateDigest(repository: string): Promise<string> {
    return (await this.digestStates(repository)).get(repository) ?? emptyStateDigest;
  }

  async stateDigests(): Promise<Map<string, string>> {
    return this.digestStates(undefined);
  }

  async storedBytes(): Promise<{ blobs: number; blobBytes: number; manifestBytes: number }> {
    const blobs = this.db
      .prepare(
        "SELECT COUNT(*) AS blobs, COALESCE(SUM(size), 0) AS bytes FROM (SELECT digest, MAX(size) AS size FROM blob_links GROUP BY digest)",
      )
      .get() as { blobs: number; bytes: number };
    const manifests = this.db
      .prepare(
        "SELECT COALESCE(SUM(size), 0) AS bytes FROM (SELECT digest, MAX(LENGTH(bytes)) AS size FROM manifests GROUP BY digest)",
      )
      .get() as { bytes: number };
    return { blobs: blobs.blobs, blobBytes: blobs.bytes, manifestBytes: manifests.bytes };
  }

  /**
   * Hashes every register of one repository (or of all), section by section and in key
   * order within a section, so that the same registers always give the same digest.
   */
  private async digestStates(only: string | undefined): Promise<Map<string, string>> {
    const hashes = new Map<string, Hash>();
    const add = (repository: string, line: string) => {
      let hash = hashes.get(repository);
      if (!hash) {
        hash = createHash("sha256");
        hashes.set(repository, hash);
      }
      hash.update(line);
    };
    const rows = (statement: Statement): Iterable<Record<string, string | null>> =>
      statement.iterate({ only: only ?? null }) as Iterable<Record<string, string | null>>;
    for (const r of rows(this.sql.stateTags)) {
      add(r.repository as string, `t ${r.tag} ${r.digest ?? "-"} ${r.stamp}\n`);
    }
    for (const r of rows(this.sql.stateManifests)) {
      add(r.repository as string, `m ${r.digest} ${r.stamp}\n`);
    }
    for (const r of rows(this.sql.stateManifestTombstones)) {
      add(r.repository as string, `${r.expired === "1" ? "y" : "x"} ${r.digest} ${r.stamp}\n`);
    }
    for (const r of rows(this.sql.stateLinks)) {
      const kind = r.linked === "1" ? "l" : r.expired === "1" ? "e" : "u";
      add(r.repository as string, `${kind} ${r.digest} ${r.stamp}\n`);
    }
    if (only === undefined || only === controlRepository) {
      for (const r of this.sql.allControls.iterate() as Iterable<ControlRecord>) {
        add(controlRepository, `c ${r.kind} ${r.name} ${r.value ?? "-"} ${r.stamp}\n`);
      }
    }
    const names =
      only === undefined
        ? (this.sql.listRepositories.all("", -1) as { name: string }[]).map((r) => r.name)
        : [only];
    if (only === undefined && hashes.has(controlRepository)) names.push(controlRepository);
    const digests = new Map<string, string>();
    for (const name of names) {
      const hash = hashes.get(name);
      digests.set(name, hash ? `sha256:${hash.digest("hex")}` : emptyStateDigest);
    }
    return digests;
  }

  async listTags(repository: string, page: Page): Promise<string[] | undefined> {
    if (!this.sql.repositoryExists.get(repository)) return undefined;
    return this.sql.listTags.all(repository, page.last ?? "", pageLimit(page)) as string[];
  }

  async listTagsJson(repository: string): Promise<string | undefined> {
    if (!this.sql.repositoryExists.get(repository)) return undefined;
    return this.sql.listTagsJson.get(repository) as string;
  }

  async listRepositories(page: Page): Promise<string[]> {
    const rows = this.sql.listRepositories.all(page.last ?? "", pageLimit(page)) as {
      name: string;
    }[];
    return rows.map((row) => row.name);
  }

  async listReferrers(
    repository: string,
    digest: Digest,
    artifactType?: string,
  ): Promise<Referrer[]> {
    const rows = this.sql.listReferrers.all(repository, digest) as {
      digest: string;
      media_type: string;
      size: number;
      artifact_type: string | null;
      annotations: string | null;
    }[];
    return rows
      .filter((row) => artifactType === undefined || row.artifact_type === artifactType)
      .map((row) => {
        const referrer: Referrer = {
          mediaType: row.media_type,
          digest: row.digest as Digest,
          size: row.size,
        };
        if (row.artifact_type !== null) referrer.artifactType = row.artifact_type;
        if (row.annotations !== null) referrer.annotations = JSON.parse(row.annotations);
        return referrer;
      });
  }

  async changesSince(since: number, limit: number): Promise<ChangeRecord[]> {
    return this.readChanges(since, limit);
  }

  private readChanges(since: number, limit: number): ChangeRecord[] {
    const rows = this.sql.changesSince.all(since, limit) as {
      seq: number;
      stamp: string;
      kind: ChangeKind;
      repository: string;
      digest: string | null;
      tag: string | null;
      request: string | null;
    }[];
    return rows.map(changeRecord);
  }

  async putControlRecord(record: ControlRecord): Promise<boolean> {
    return this.transact(() => {
      const current = this.sql.controlStamp.get(record.kind, record.name) as
        | { stamp: string }
        | undefined;
      if (current && current.stamp >= record.stamp) return false;
      this.sql.putControl.run(record.kind, record.name, record.value, record.stamp);
      this.record(
        record.stamp,
        record.value === null ? "control-delete" : "control-put",
        `${controlPrefix}${record.kind}`,
        undefined,
        record.name,
      );
      return true;
    });
  }

  async controlRecords(kind: string): Promise<ControlRecord[]> {
    return this.sql.controlsOfKind.all(kind) as ControlRecord[];
  }

  async logId(): Promise<string> {
    const row = this.db.prepare("SELECT value FROM meta WHERE key = 'log_id'").get() as {
      value: string;
    };
    return row.value;
  }

  async headSeq(): Promise<number> {
    const row = this.sql.headSeq.get() as { seq: number | null };
    return row.seq ?? 0;
  }

  async exportRepository(repository: string): Promise<RepositoryExport> {
    if (repository === controlRepository) {
      const controls = this.sql.allControls.all() as ControlRecord[];
      return { manifests: [], tags: [], tombstones: [], links: [], controls };
    }
    const manifests = this.sql.exportManifests.all(repository) as {
      digest: Digest;
      media_type: string;
      bytes: Buffer;
      stamp: string;
    }[];
    return {
      manifests: manifests.map((m) => ({
        digest: m.digest,
        mediaType: m.media_type,
        bytes: m.bytes,
        stamp: m.stamp,
      })),
      tags: this.sql.exportTags.all(repository) as RepositoryExport["tags"],
      tombstones: (
        this.sql.exportTombstones.all(repository) as {
          digest: Digest;
          stamp: string;
          expired: number;
        }[]
      ).map((t) =>
        t.expired === 1
          ? { digest: t.digest, stamp: t.stamp, expired: true }
          : { digest: t.digest, stamp: t.stamp },
      ),
      links: (
        this.sql.exportLinks.all(repository, repository) as {
          digest: Digest;
          linked: number;
          stamp: string;
          expired: number;
        }[]
      ).map((l) =>
        l.expired === 1
          ? { digest: l.digest, linked: false, stamp: l.stamp, expired: true }
          : { digest: l.digest, linked: l.linked === 1, stamp: l.stamp },
      ),
    };
  }

  async latestStamp(): Promise<Stamp | undefined> {
    const row = this.sql.latestStamp.get() as { stamp: string | null };
    return row.stamp ?? undefined;
  }

  onCommit(listener: CommitListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.watch?.stop();
    await this.walSync?.close();
    if (this.db.open) this.db.close();
  }

  /**
   * Runs `work` as one atomic operation. Operations that arrive together are committed
   * together (group commit): each runs in its own savepoint inside one transaction, so
   * one that throws is rolled back alone, and the batch costs one flush instead of one
   * per operation. The promise settles once the commit is on disk (walSync); then the
   * change records are announced, so that peers and webhooks only hear of durable ones.
   */
  private transact<T>(work: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ work, resolve: resolve as (value: unknown) => void, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    const batch = this.queue;
    this.queue = [];
    let outcomes: WriteOutcome[];
    try {
      outcomes = this.commitBatch(batch);
    } catch (error) {
      for (const item of batch) item.reject(error);
      return;
    } finally {
      this.pending = [];
    }
    const committed = outcomes.flatMap((outcome) => outcome.records);
    // At once: the watch must not announce these seqs as another process's.
    if (committed.length > 0) this.watch?.ownCommitted(committed);
    const settle = () => {
      batch.forEach((item, index) => {
        const outcome = outcomes[index];
        if (outcome?.ok) item.resolve(outcome.value);
        else item.reject(outcome?.error);
      });
      if (committed.length > 0) this.announce(committed);
    };
    if (!this.walSync) {
      settle();
      return;
    }
    this.walSync.sync().then(settle, (error: unknown) => {
      for (const item of batch) item.reject(error);
    });
  }

  private announce(records: ChangeRecord[]): void {
    // The commit is done whatever a listener does: one that throws is reported, and
    // neither the writers nor the other listeners notice.
    for (const listener of this.listeners) {
      try {
        listener(records);
      } catch (error) {
        this.onListenerError(error);
      }
    }
  }

  private record(
    stamp: Stamp,
    kind: ChangeKind,
    repository: string,
    digest?: Digest,
    tag?: string,
    request?: ChangeRequest,
  ): void {
    const requestJson = request ? JSON.stringify(request) : null;
    const info = this.sql.appendChange.run(
      stamp,
      kind,
      repository,
      digest ?? null,
      tag ?? null,
      requestJson,
    );
    this.pending.push(
      changeRecord({
        seq: Number(info.lastInsertRowid),
        stamp,
        kind,
        repository,
        digest,
        tag,
        request: requestJson,
      }),
    );
  }
}

function pageLimit(page: Page): number {
  // SQLite reads LIMIT -1 as "no limit": an unpaginated listing returns everything. No
  // cap of its own: the API caps n and asks for one entry more, to learn whether a next
  // page follows (a cap equal to the API's hid the Link header of an n=10000 page).
  return page.limit ?? -1;
}

/** Every statement the driver runs, prepared once at open (exported for the query-plan test). */
export function prepareStatements(db: Database.Database) {
  const prepare = (text: string): Statement => db.prepare(text);
  return {
    addRepository: prepare("INSERT OR IGNORE INTO repositories (name) VALUES (?)"),
    repositoryExists: prepare("SELECT 1 FROM repositories WHERE name = ?"),
    putBlobLink: prepare(
      "INSERT OR REPLACE INTO blob_links (repository, digest, size, stamp) VALUES (?, ?, ?, ?)",
    ),
    getBlobLink: prepare("SELECT size, stamp FROM blob_links WHERE repository = ? AND digest = ?"),
    linkRegisterStamp: prepare(
      `SELECT max(stamp) AS stamp FROM (
         SELECT stamp FROM blob_links WHERE repository = ? AND digest = ?
         UNION ALL
         SELECT stamp FROM blob_link_tombstones WHERE repository = ? AND digest = ?)`,
    ),
    putBlobLinkTombstone: prepare(
      "INSERT OR REPLACE INTO blob_link_tombstones (repository, digest, stamp, expired) VALUES (?, ?, ?, ?)",
    ),
    clearBlobLinkTombstone: prepare(
      "DELETE FROM blob_link_tombstones WHERE repository = ? AND digest = ?",
    ),
    manifestStamp: prepare("SELECT stamp FROM manifests WHERE repository = ? AND digest = ?"),
    bumpManifestStamp: prepare(
      "UPDATE manifests SET stamp = ? WHERE repository = ? AND digest = ?",
    ),
    // The state digest's sections: one repository (@only) or all (@only NULL).
    stateTags: prepare(
      `SELECT repository, tag, digest, stamp FROM tags
         WHERE @only IS NULL OR repository = @only ORDER BY repository, tag`,
    ),
    stateManifests: prepare(
      `SELECT repository, digest, stamp FROM manifests
         WHERE @only IS NULL OR repository = @only ORDER BY repository, digest`,
    ),
    stateManifestTombstones: prepare(
      `SELECT repository, digest, stamp, CAST(expired AS TEXT) AS expired FROM manifest_tombstones
         WHERE @only IS NULL OR repository = @only ORDER BY repository, digest`,
    ),
    stateLinks: prepare(
      `SELECT repository, digest, stamp, '1' AS linked, '0' AS expired FROM blob_links
         WHERE @only IS NULL OR repository = @only
       UNION ALL
       SELECT repository, digest, stamp, '0' AS linked, CAST(expired AS TEXT) AS expired
         FROM blob_link_tombstones
         WHERE @only IS NULL OR repository = @only
       ORDER BY repository, digest`,
    ),
    unlinkBlob: prepare("DELETE FROM blob_links WHERE repository = ? AND digest = ?"),
    getManifest: prepare(
      "SELECT digest, media_type, bytes, subject, stamp FROM manifests WHERE repository = ? AND digest = ?",
    ),
    getTaggedManifest: prepare(
      `SELECT m.digest, m.media_type, m.bytes, m.subject, m.stamp, t.stamp AS tag_stamp
       FROM tags t JOIN manifests m ON m.repository = t.repository AND m.digest = t.digest
       WHERE t.repository = ? AND t.tag = ? AND t.visible = 1`,
    ),
    manifestExists: prepare("SELECT 1 FROM manifests WHERE repository = ? AND digest = ?"),
    insertManifest: prepare(
      `INSERT OR IGNORE INTO manifests
       (repository, digest, media_type, bytes, refs, subject, artifact_type, annotations, stamp)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    deleteManifest: prepare("DELETE FROM manifests WHERE repository = ? AND digest = ?"),
    manifestTombstone: prepare(
      "SELECT stamp, expired FROM manifest_tombstones WHERE repository = ? AND digest = ?",
    ),
    putManifestTombstone: prepare(
      "INSERT OR REPLACE INTO manifest_tombstones (repository, digest, stamp, expired) VALUES (?, ?, ?, ?)",
    ),
    getTag: prepare("SELECT digest, stamp FROM tags WHERE repository = ? AND tag = ?"),
    putTag: prepare(
      "INSERT OR REPLACE INTO tags (repository, tag, digest, stamp) VALUES (?, ?, ?, ?)",
    ),
    // After every write that can change whether a tag is visible: the tag's own write, and
    // a manifest's first put or a delete (for every tag that names it).
    refreshTag: prepare(
      `UPDATE tags SET visible = ${tagVisibility} WHERE repository = ? AND tag = ?`,
    ),
    refreshDigestTags: prepare(
      `UPDATE tags INDEXED BY tags_by_digest SET visible = ${tagVisibility}
       WHERE repository = ? AND digest = ?`,
    ),
    // One table, no per-row join, and the tag names only (pluck: no object per row): with
    // the two joins and a row object per tag, 3,000 tags took 3.2-5.2 ms; like this 0.8 ms.
    listTags: prepare(
      "SELECT tag FROM tags WHERE repository = ? AND visible = 1 AND tag > ? ORDER BY tag LIMIT ?",
    ).pluck(),
    // SQLite writes the JSON array itself (escaping included): 3,000 tags in 0.5 ms, against
    // 0.8 ms for listTags plus 0.2 ms for JSON.stringify of its array. The aggregate takes
    // the ordered subquery's rows in order (the suite checks it); json_group_array(tag
    // ORDER BY tag) would promise it but sorts again: 0.9 ms.
    listTagsJson: prepare(
      `SELECT json_group_array(tag) FROM
         (SELECT tag FROM tags WHERE repository = ? AND visible = 1 ORDER BY tag)`,
    ).pluck(),
    listRepositories: prepare("SELECT name FROM repositories WHERE name > ? ORDER BY name LIMIT ?"),
    listReferrers: prepare(
      `SELECT digest, media_type, length(bytes) AS size, artifact_type, annotations
       FROM manifests INDEXED BY manifests_by_subject
       WHERE repository = ? AND subject = ? ORDER BY digest`,
    ),
    appendChange: prepare(
      "INSERT INTO changes (stamp, kind, repository, digest, tag, request) VALUES (?, ?, ?, ?, ?, ?)",
    ),
    changesSince: prepare(
      "SELECT seq, stamp, kind, repository, digest, tag, request FROM changes WHERE seq > ? ORDER BY seq LIMIT ?",
    ),
    headSeq: prepare("SELECT max(seq) AS seq FROM changes"),
    exportManifests: prepare(
      "SELECT digest, media_type, bytes, stamp FROM manifests WHERE repository = ? ORDER BY digest",
    ),
    exportTags: prepare("SELECT tag, digest, stamp FROM tags WHERE repository = ? ORDER BY tag"),
    exportTombstones: prepare(
      "SELECT digest, stamp, expired FROM manifest_tombstones WHERE repository = ? ORDER BY digest",
    ),
    controlStamp: prepare("SELECT stamp FROM control_records WHERE kind = ? AND name = ?"),
    putControl: prepare(
      "INSERT OR REPLACE INTO control_records (kind, name, value, stamp) VALUES (?, ?, ?, ?)",
    ),
    controlsOfKind: prepare(
      "SELECT kind, name, value, stamp FROM control_records WHERE kind = ? ORDER BY name",
    ),
    allControls: prepare(
      "SELECT kind, name, value, stamp FROM control_records ORDER BY kind, name",
    ),
    exportLinks: prepare(
      `SELECT digest, 1 AS linked, stamp, 0 AS expired FROM blob_links WHERE repository = ?
       UNION ALL
       SELECT digest, 0 AS linked, stamp, expired FROM blob_link_tombstones WHERE repository = ?
       ORDER BY digest`,
    ),
    latestStamp: prepare("SELECT max(stamp) AS stamp FROM changes"),
    putManifestRef: prepare(
      "INSERT OR IGNORE INTO manifest_refs (repository, kind, target, manifest) VALUES (?, ?, ?, ?)",
    ),
    manifestRefs: prepare("SELECT refs FROM manifests WHERE repository = ? AND digest = ?").pluck(),
    deleteManifestRef: prepare(
      "DELETE FROM manifest_refs WHERE repository = ? AND kind = ? AND target = ? AND manifest = ?",
    ),
    referencedByManifest: prepare(
      "SELECT 1 FROM manifest_refs WHERE repository = ? AND kind = 'b' AND target = ? LIMIT 1",
    ),
    listedByIndex: prepare(
      "SELECT 1 FROM manifest_refs WHERE repository = ? AND kind = 'm' AND target = ? LIMIT 1",
    ),
    // A client's unlink (expired = 0) keeps the blob unservable whatever references it.
    servedByManifest: prepare(
      `SELECT 1 WHERE EXISTS (SELECT 1 FROM manifest_refs
                               WHERE repository = ? AND kind = 'b' AND target = ?)
         AND NOT EXISTS (SELECT 1 FROM blob_link_tombstones
                          WHERE repository = ? AND digest = ? AND expired = 0)`,
    ),
    expirableLinks: prepare(
      `SELECT l.repository, l.digest, l.size, l.stamp FROM blob_links l
       WHERE (l.repository, l.digest) > (@repository, @digest) AND l.stamp < @olderThan
         AND NOT EXISTS (SELECT 1 FROM manifest_refs r
                          WHERE r.repository = l.repository AND r.kind = 'b'
                            AND r.target = l.digest)
       ORDER BY l.repository, l.digest LIMIT @limit`,
    ),
    // Anything that keeps a blob's bytes: a live link, a stored manifest, a recent unlink.
    blobReferenced: prepare(
      `SELECT 1 WHERE EXISTS (SELECT 1 FROM blob_links WHERE digest = @digest)
         OR EXISTS (SELECT 1 FROM manifest_refs WHERE target = @digest AND kind = 'b')
         OR EXISTS (SELECT 1 FROM blob_link_tombstones
                     WHERE digest = @digest AND stamp >= @olderThan)`,
    ),
    manifestGraph: prepare(
      `SELECT m.digest, m.stamp, length(m.bytes) AS size, m.subject,
         json_extract(m.refs, '$.manifests') AS children,
         EXISTS (SELECT 1 FROM tags t INDEXED BY tags_by_digest
                  WHERE t.repository = m.repository AND t.digest = m.digest AND t.visible = 1)
           AS tagged
       FROM manifests m WHERE m.repository = ? ORDER BY m.digest`,
    ),
    // A manifest retention must keep whatever it decided: a visible tag, or a stored parent.
    manifestInUse: prepare(
      `SELECT 1 WHERE EXISTS (SELECT 1 FROM tags INDEXED BY tags_by_digest
                               WHERE repository = ? AND digest = ? AND visible = 1)
         OR EXISTS (SELECT 1 FROM manifest_refs WHERE repository = ? AND kind = 'm' AND target = ?)`,
    ),
    repositoryUsage: prepare(
      `SELECT r.name AS repository,
         (SELECT count(*) FROM blob_links l WHERE l.repository = r.name) AS links,
         (SELECT coalesce(sum(size), 0) FROM blob_links l WHERE l.repository = r.name) AS linkedBytes,
         (SELECT count(*) FROM manifests m WHERE m.repository = r.name) AS manifests,
         (SELECT coalesce(sum(length(bytes)), 0) FROM manifests m WHERE m.repository = r.name)
           AS manifestBytes
       FROM repositories r ORDER BY r.name`,
    ),
  };
}
