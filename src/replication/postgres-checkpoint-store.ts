// The checkpoints of a region whose nodes share a PostgreSQL database (tables of migration
// 3, metadata/postgres-schema.ts): one per peer for the whole region, written by whichever
// node leads, so that a node taking the lead goes on from the last record its predecessor
// applied instead of reading each peer's feed again from the start.
import type pg from "pg";
import { inTransaction } from "../metadata/postgres-transaction.ts";
import type { Checkpoint, CheckpointStore } from "./checkpoint-store.ts";

export class PostgresCheckpointStore implements CheckpointStore {
  /** `pool`: connections whose search_path is the region's schema; closed by its owner. */
  constructor(private readonly pool: pg.Pool) {}

  async get(peer: string): Promise<Checkpoint> {
    const { rows } = await this.pool.query<{ seq: string; log: string | null }>(
      "SELECT seq, log FROM replication_checkpoints WHERE peer = $1",
      [peer],
    );
    const row = rows[0];
    return { seq: row ? Number(row.seq) : 0, log: row?.log ?? undefined };
  }

  async set(peer: string, seq: number, log: string | undefined): Promise<void> {
    await this.pool.query(
      `INSERT INTO replication_checkpoints (peer, seq, log) VALUES ($1, $2, $3)
       ON CONFLICT (peer) DO UPDATE SET seq = excluded.seq, log = excluded.log`,
      [peer, seq, log ?? null],
    );
  }

  async addTransferred(bytes: Record<string, number>): Promise<void> {
    const counts = Object.entries(bytes).filter(([, count]) => count > 0);
    if (counts.length === 0) return;
    await inTransaction(this.pool, async (client) => {
      for (const [peer, count] of counts) {
        await client.query(
          `INSERT INTO replication_transferred (peer, bytes) VALUES ($1, $2)
           ON CONFLICT (peer) DO UPDATE SET bytes = replication_transferred.bytes + excluded.bytes`,
          [peer, count],
        );
      }
    });
  }

  async transferred(): Promise<Record<string, number>> {
    const { rows } = await this.pool.query<{ peer: string; bytes: string }>(
      "SELECT peer, bytes FROM replication_transferred",
    );
    return Object.fromEntries(rows.map((row) => [row.peer, Number(row.bytes)]));
  }

  async close(): Promise<void> {}
}
