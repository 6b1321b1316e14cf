// The state of a replica's background work that its processes share: the per-peer
// checkpoints of replication and the webhook outbox (written by the leading process), and
// the claims that say which process fetches a blob. Beside embedded metadata, SQLite files
// in the data folder; on PostgreSQL, tables of the region's database, so that the node
// that takes the lead after another died goes on with what that one left (the events it
// had not delivered, the records it had not applied) rather than with the state of its
// own data folder, and a blob crosses to the region once.
import { join } from "node:path";
import type { Config } from "../config/config-schema.ts";
import type { CheckpointStore } from "../replication/checkpoint-store.ts";
import type { FetchClaims } from "../replication/fetch-claims.ts";
import type { OutboxStore } from "../webhooks/outbox-store.ts";

export interface SharedWorkStores {
  checkpoints: CheckpointStore;
  outbox: OutboxStore;
  /** Undefined for a replica of one process: its fetcher is the only one. */
  fetchClaims: FetchClaims | undefined;
  close(): Promise<void>;
}

export async function openSharedWorkStores(options: {
  config: Config;
  dataDir: string;
  /** Whether the replica runs as several processes (workers or nodes). */
  processes: number;
  onIdleError: (error: unknown) => void;
}): Promise<SharedWorkStores> {
  const { config, dataDir } = options;
  const durable = config.storage.durable;
  if (config.storage.metadata.driver === "postgres") {
    const { openPostgresPool } = await import("../metadata/open-metadata-store.ts");
    const { PostgresCheckpointStore } = await import("../replication/postgres-checkpoint-store.ts");
    const { PostgresOutboxStore } = await import("../webhooks/postgres-outbox-store.ts");
    const { PostgresFetchClaims } = await import("../replication/postgres-fetch-claims.ts");
    // Few connections: one follower per peer writes checkpoints, the delivery worker settles.
    const pool = await openPostgresPool(config.storage.metadata, {
      max: 4,
      durable,
      onIdleError: options.onIdleError,
    });
    const fetchClaims = new PostgresFetchClaims(pool, options.onIdleError);
    return {
      checkpoints: new PostgresCheckpointStore(pool),
      outbox: new PostgresOutboxStore(pool),
      fetchClaims,
      async close() {
        await fetchClaims.close();
        await pool.end();
      },
    };
  }
  const { SqliteCheckpointStore } = await import("../replication/sqlite-checkpoint-store.ts");
  const { SqliteOutboxStore } = await import("../webhooks/sqlite-outbox-store.ts");
  // Opened when replication first asks: a replica that replicates nothing makes no file.
  let checkpoints: InstanceType<typeof SqliteCheckpointStore> | undefined;
  const outbox = new SqliteOutboxStore(join(dataDir, "webhooks.db"), { durable });
  const { SqliteFetchClaims } = await import("../replication/sqlite-fetch-claims.ts");
  let fetchClaims: InstanceType<typeof SqliteFetchClaims> | undefined;
  return {
    get checkpoints() {
      checkpoints ??= new SqliteCheckpointStore(join(dataDir, "replication.db"));
      return checkpoints;
    },
    outbox,
    get fetchClaims() {
      if (options.processes > 1) {
        fetchClaims ??= new SqliteFetchClaims(join(dataDir, "replication.db"), options.onIdleError);
      }
      return fetchClaims;
    },
    async close() {
      await checkpoints?.close();
      await outbox.close();
      await fetchClaims?.close();
    },
  };
}
