// One transaction on a connection of a `pg` pool (the metadata store's writes and read
// snapshots, the tables beside the metadata): commit when the work resolves, roll back
// when it throws, and a connection whose rollback failed is not handed out again.
import type pg from "pg";

export async function inTransaction<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient) => Promise<T>,
  /** How the transaction starts (an isolation level, read only, a lock taken first). */
  begin = "BEGIN",
  /** The work sends COMMIT itself (with its last statement, to save a round trip). */
  workCommits = false,
): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query(begin);
    const value = await work(client);
    if (!workCommits) await client.query("COMMIT");
    return value;
  } catch (error) {
    await client.query("ROLLBACK").catch((rollback: unknown) => {
      broken = rollback instanceof Error ? rollback : new Error(String(rollback));
    });
    throw error;
  } finally {
    client.release(broken);
  }
}
