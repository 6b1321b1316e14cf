// Where the work only the leading process does keeps its progress: the per-peer
// checkpoints of replication and the webhook outbox. Beside embedded metadata, SQLite
// files in the data folder; on PostgreSQL, tables of the region's database, so that the
// node that takes the lead after another died goes on with what that one left (the
// events it had not delivered, the records it had not applied) rather than with the
// state of its own data folder.
import { join } from "node:path";
import type { Config } from "../config/config-schema.ts";
import type { CheckpointStore } from "../replication/checkpoint-store.ts";
import type { OutboxStore } from "../webhooks/outbox-store.ts";

export interface LeaderWorkStores {
  checkpoints: CheckpointStore;
  outbox: OutboxStore;
  close(): Promise<void>;
}

export async function openLeaderWorkStores(options: {
  config: Config;
  dataDir: string;
  onIdleError: (error: unknown) => void;
}): Promise<LeaderWorkStores> {
  const { config, dataDir } = options;
  const durable = config.storage.durable;
  if (config.storage.metadata.driver === "postgres") {
    const { openPostgresPool } = await import("../metadata/open-metadata-store.ts");
    const { PostgresCheckpointStore } = await import("../replication/postgres-checkpoint-store.ts");
    const { PostgresOutboxStore } = await import("../webhooks/postgres-outbox-store.ts");
    // Few connections: one follower per peer writes checkpoints, the delivery worker settles.
    const pool = await openPostgresPool(config.storage.metadata, {
      max: 4,
      durable,
      onIdleError: options.onIdleError,
    });
    return {
      checkpoints: new PostgresCheckpointStore(pool),
      outbox: new PostgresOutboxStore(pool),
      close: () => pool.end(),
    };
  }
  const { SqliteCheckpointStore } = await import("../replication/sqlite-checkpoint-store.ts");
  const { SqliteOutboxStore } = await import("../webhooks/sqlite-outbox-store.ts");
  const checkpoints = new SqliteCheckpointStore(join(dataDir, "replication.db"));
  const outbox = new SqliteOutboxStore(join(dataDir, "webhooks.db"), { durable });
  return {
    checkpoints,
    outbox,
    async close() {
      await checkpoints.close();
      await outbox.close();
    },
  };
}
