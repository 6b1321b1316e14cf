// The leases of a region's nodes over its PostgreSQL database, held as session advisory
// locks on one dedicated connection: the server frees them the moment that connection
// ends, so a node that dies (or loses the database) hands on what it held at once.
//
// - A clock slot, taken at open and held for the node's life: node stamps never meet
//   (src/registry/hybrid-clock.ts).
// - The region's leadership: the node that holds it runs the work that must run once per
//   region (following the peers, webhook delivery, imports, collection, the control
//   plane); it writes where it answers into `meta` (`leader_url`), and the other nodes
//   forward such requests there.
//
// A leader whose connection fails can no longer know that it still leads: it must stop
// acting as one (`onLost`); the replica ends its process, and its supervisor starts it
// again as a node that does not lead.
import pg from "pg";
import { lockClass, lockKey, schemaNamePattern } from "./postgres-schema.ts";

export interface NodeLeaseOptions {
  url: string;
  schema: string;
  /** How many clock slots a region has (at most that many nodes). */
  slots: number;
  /** The connection holding the leases failed: what they guarded is no longer held. */
  onLost: (error: unknown) => void;
}

export class PostgresNodeLease {
  private leading = false;
  private closed = false;

  private constructor(
    private readonly client: pg.Client,
    private readonly schema: string,
    readonly slot: number,
  ) {}

  static async open(options: NodeLeaseOptions): Promise<PostgresNodeLease> {
    if (!schemaNamePattern.test(options.schema)) {
      throw new Error(`invalid PostgreSQL schema name ${JSON.stringify(options.schema)}`);
    }
    const client = new pg.Client({
      connectionString: options.url,
      options: `-c search_path=${options.schema}`,
    });
    await client.connect();
    try {
      for (let slot = 0; slot < options.slots; slot += 1) {
        const key = lockKey(`slot:${options.schema}:${slot}`);
        const { rows } = await client.query<{ ok: boolean }>(
          `SELECT pg_try_advisory_lock(${lockClass}, ${key}) AS ok`,
        );
        if (!rows[0]?.ok) continue;
        const lease = new PostgresNodeLease(client, options.schema, slot);
        client.on("error", (error) => {
          if (!lease.closed) options.onLost(error);
        });
        client.on("end", () => {
          if (!lease.closed) options.onLost(new Error("the lease connection ended"));
        });
        return lease;
      }
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    await client.end();
    throw new Error(`all ${options.slots} node slots of schema ${options.schema} are taken`);
  }

  get leads(): boolean {
    return this.leading;
  }

  /** Takes the region's leadership if nobody holds it; whether this node leads now. */
  async tryLead(): Promise<boolean> {
    if (this.leading) return true;
    const key = lockKey(`leader:${this.schema}`);
    const { rows } = await this.client.query<{ ok: boolean }>(
      `SELECT pg_try_advisory_lock(${lockClass}, ${key}) AS ok`,
    );
    this.leading = rows[0]?.ok === true;
    return this.leading;
  }

  /** The leader says where the other nodes reach it. */
  async advertise(url: string): Promise<void> {
    if (!this.leading) throw new Error("only the leading node advertises itself");
    await this.client.query(
      "INSERT INTO meta (key, value) VALUES ('leader_url', $1) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
      [url],
    );
  }

  /**
   * The region's replica id, kept in the database: the first node to start makes it
   * (`candidate`), and every node after takes the same, since they are one replica.
   */
  async replicaId(candidate: string): Promise<string> {
    await this.client.query(
      "INSERT INTO meta (key, value) VALUES ('replica_id', $1) ON CONFLICT (key) DO NOTHING",
      [candidate],
    );
    const { rows } = await this.client.query<{ value: string }>(
      "SELECT value FROM meta WHERE key = 'replica_id'",
    );
    return rows[0]?.value ?? candidate;
  }

  /** Where the region's leader answers, as it advertised (undefined before any led). */
  async leaderUrl(): Promise<string | undefined> {
    const { rows } = await this.client.query<{ value: string }>(
      "SELECT value FROM meta WHERE key = 'leader_url'",
    );
    return rows[0]?.value;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.client.end().catch(() => undefined);
  }
}
