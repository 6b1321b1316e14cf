// The PostgreSQL metadata-store driver: the SQLite driver's semantics (registers, tombstones,
// tag visibility, byte-identical state digests) over a `pg` pool, so that several nodes of
// one region share one database. Each write is one transaction with its change-log rows;
// the change log is one per region (per schema), and a commit made by any node reaches
// every node's onCommit listeners (postgres-change-feed.ts).
import pg from "pg";
import type { Digest } from "../oci/digest.ts";
import type {
  BlobLink,
  ChangeKind,
  CommitListener,
  ControlRecord,
  LinkKey,
  ManifestRecord,
  MetadataStore,
  RepositoryExport,
  Stamp,
  WriteOptions,
} from "./metadata-store.ts";
import { PostgresChangeFeed } from "./postgres-change-feed.ts";
import { PostgresReads } from "./postgres-reads.ts";
import { lockClass, lockKey, migrate, schemaNamePattern } from "./postgres-schema.ts";
import { digestStates, emptyStateDigest, exportRepository } from "./postgres-state-digest.ts";
import { sql } from "./postgres-statements.ts";
import { inTransaction } from "./postgres-transaction.ts";
import { WriteTransaction } from "./postgres-write-transaction.ts";

export interface PostgresMetadataStoreOptions {
  /** postgres://user:password@host:port/database */
  url: string;
  /** The PostgreSQL schema holding the tables (created if missing); default "public". */
  schema?: string;
  /** Connections in the pool (default 10), besides the one that listens. */
  poolSize?: number;
  /** false: synchronous_commit=off (faster; the server may lose its last commits on a crash). */
  durable?: boolean;
  /** Told of a commit listener that threw, or of a lost listening connection. */
  onListenerError?: (error: unknown) => void;
}

const controlPrefix = "_control:";

export class PostgresMetadataStore extends PostgresReads implements MetadataStore {
  private closing: Promise<void> | undefined;

  private constructor(
    pool: pg.Pool,
    private readonly schema: string,
    private readonly id: string,
    private readonly feed: PostgresChangeFeed,
  ) {
    super(pool);
  }

  /** Connects, migrates the schema (several nodes may do so at once) and starts listening. */
  static async open(options: PostgresMetadataStoreOptions): Promise<PostgresMetadataStore> {
    const schema = options.schema ?? "public";
    if (!schemaNamePattern.test(schema)) {
      throw new Error(`invalid PostgreSQL schema name ${JSON.stringify(schema)}`);
    }
    const onError =
      options.onListenerError ??
      ((error: unknown) => console.error(`metadata commit listener failed: ${String(error)}`));
    const settings = [`-c search_path=${schema}`];
    if (options.durable === false) settings.push("-c synchronous_commit=off");
    const connection: pg.ClientConfig = {
      connectionString: options.url,
      options: settings.join(" "),
    };
    const pool = new pg.Pool({ ...connection, max: options.poolSize ?? 10 });
    // An idle connection the server ends is dropped from the pool; without a handler the
    // error would end the process.
    pool.on("error", (error) =>
      onError(new Error("an idle metadata-store connection failed", { cause: error })),
    );
    try {
      const id = await migrate(pool, schema);
      const reads = new PostgresReads(pool);
      const feed = new PostgresChangeFeed({
        connection,
        schema,
        read: (since, limit) => reads.changesSince(since, limit),
        head: () => reads.headSeq(),
        onError,
      });
      await feed.start();
      return new PostgresMetadataStore(pool, schema, id, feed);
    } catch (error) {
      await pool.end().catch(() => {});
      throw error;
    }
  }

  async linkBlob(link: BlobLink): Promise<boolean> {
    return this.transact(link.repository, async (tx) => {
      const current = await tx.linkRegisterStamp(link.repository, link.digest);
      if (current !== undefined && current >= link.stamp) return false;
      await tx.run(sql.writeBlobLink, [link.repository, link.digest, link.size, link.stamp]);
      tx.record(link.stamp, "blob-link", link.repository, link.digest);
      return true;
    });
  }

  async unlinkBlob(
    repository: string,
    digest: Digest,
    stamp: Stamp,
    options: { expired?: boolean } = {},
  ): Promise<boolean> {
    return this.transact(repository, async (tx) => {
      const current = await tx.linkRegisterStamp(repository, digest);
      if (current !== undefined && current >= stamp) return false;
      const expired = options.expired ?? false;
      const [row] = await tx.rows<{ removed: string }>(sql.writeBlobUnlink, [
        repository,
        digest,
        stamp,
        expired,
      ]);
      const removed = Number(row?.removed) > 0;
      tx.record(stamp, expired ? "blob-expire" : "blob-unlink", repository, digest);
      return removed;
    });
  }

  async expireBlobLink(key: LinkKey, linkStamp: Stamp, stamp: Stamp): Promise<boolean> {
    const { repository, digest } = key;
    return this.transact(repository, async (tx) => {
      const [link] = await tx.rows<{ stamp: string }>(sql.getBlobLink, [repository, digest]);
      if (link?.stamp !== linkStamp || link.stamp >= stamp) return false;
      if (await tx.exists(sql.referencedByManifest, [repository, digest])) return false;
      await tx.run(sql.writeBlobUnlink, [repository, digest, stamp, true]);
      tx.record(stamp, "blob-expire", repository, digest);
      return true;
    });
  }

  async expireManifest(
    repository: string,
    digest: Digest,
    putStamp: Stamp,
    stamp: Stamp,
  ): Promise<boolean> {
    return this.transact(repository, async (tx) => {
      const current = await tx.manifestStamp(repository, digest);
      if (current !== putStamp || current >= stamp) return false;
      if (await tx.exists(sql.manifestInUse, [repository, digest])) return false;
      return tx.applyManifestDelete(repository, digest, stamp, true);
    });
  }

  async putManifest(manifest: ManifestRecord, tag?: string): Promise<void> {
    await this.transact(manifest.repository, async (tx) => {
      await tx.applyManifestPut(manifest);
      if (tag !== undefined) {
        const { repository, digest, stamp, request } = manifest;
        await tx.applyTagWrite(repository, tag, digest, stamp, request);
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
    return this.transact(repository, async (tx) => {
      if (!(await tx.exists(sql.manifestKnown, [repository, digest]))) return false;
      await tx.applyTagWrite(repository, tag, digest, stamp, options.request);
      return true;
    });
  }

  async deleteManifest(
    repository: string,
    digest: Digest,
    stamp: Stamp,
    options: { expired?: boolean } & WriteOptions = {},
  ): Promise<boolean> {
    const expired = options.expired ?? false;
    return this.transact(repository, (tx) =>
      tx.applyManifestDelete(repository, digest, stamp, expired, options.request),
    );
  }

  async deleteTag(
    repository: string,
    tag: string,
    stamp: Stamp,
    options: WriteOptions = {},
  ): Promise<boolean> {
    return this.transact(repository, (tx) =>
      tx.applyTagWrite(repository, tag, null, stamp, options.request),
    );
  }

  async putControlRecord(record: ControlRecord): Promise<boolean> {
    const repository = `${controlPrefix}${record.kind}`;
    return this.transact(repository, async (tx) => {
      const [current] = await tx.rows<{ stamp: string }>(sql.controlStamp, [
        record.kind,
        record.name,
      ]);
      if (current && current.stamp >= record.stamp) return false;
      await tx.run(sql.putControl, [record.kind, record.name, record.value, record.stamp]);
      const kind: ChangeKind = record.value === null ? "control-delete" : "control-put";
      tx.record(record.stamp, kind, repository, undefined, record.name);
      return true;
    });
  }

  async stateDigest(repository: string): Promise<string> {
    const digests = await this.snapshot((query) => digestStates(query, repository));
    return digests.get(repository) ?? emptyStateDigest;
  }

  async stateDigests(): Promise<Map<string, string>> {
    return this.snapshot((query) => digestStates(query, undefined));
  }

  async exportRepository(repository: string): Promise<RepositoryExport> {
    return this.snapshot((query) => exportRepository(query, repository));
  }

  async logId(): Promise<string> {
    return this.id;
  }

  onCommit(listener: CommitListener): () => void {
    return this.feed.subscribe(listener);
  }

  /** The backend pid of the listening connection: tests end it to see the feed reconnect. */
  listenerPid(): Promise<number | undefined> {
    return this.feed.listenerPid();
  }

  async close(): Promise<void> {
    this.closing ??= (async () => {
      await this.feed.close();
      await this.pool.end();
    })();
    return this.closing;
  }

  /**
   * Runs `work` as one transaction. Writes to one repository (or one kind of control
   * record) are serialized, on every node, by an advisory lock taken first: the register
   * rules read a stamp and then write, which two concurrent transactions would otherwise
   * both do against the same old stamp. Writes to different repositories run in parallel
   * up to the change-log append. The promise settles after the commit and after the
   * listeners were told of the write's records.
   */
  private async transact<T>(lockName: string, work: (tx: WriteTransaction) => Promise<T>) {
    const key = lockKey(`${this.schema}/${lockName}`);
    // The lock is taken in the transaction's first statement, inside inTransaction's try:
    // a lock that fails (a timeout) leaves a transaction to roll back.
    const { value, head } = await inTransaction(
      this.pool,
      async (client) => {
        const tx = new WriteTransaction(client);
        const value = await work(tx);
        return { value, head: await tx.commit(this.schema) };
      },
      `BEGIN; SELECT pg_advisory_xact_lock(${lockClass}, ${key})`,
      true,
    );
    if (head !== undefined) await this.feed.deliverThrough(head);
    return value;
  }

  /** Runs reads that must agree with each other in one snapshot. */
  private async snapshot<T>(
    work: (
      query: <R extends pg.QueryResultRow>(text: string, values?: unknown[]) => Promise<R[]>,
    ) => Promise<T>,
  ): Promise<T> {
    return inTransaction(
      this.pool,
      (client) => work(async (text, values) => (await client.query(text, values)).rows),
      "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
    );
  }
}
