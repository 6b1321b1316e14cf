// Tells the commit listeners of one PostgreSQL metadata store about every commit any node
// makes on the same schema: a dedicated connection LISTENs on the channel the writers
// NOTIFY at commit, and each wake-up reads the change log past what was delivered, so
// listeners get every record once, in seq order, whoever wrote it. A local writer wakes
// the feed itself after its commit and waits for its records to be delivered, so that
// (as with the SQLite driver) a write resolves after its listeners ran.
import pg from "pg";
import type { ChangeRecord, CommitListener } from "./metadata-store.ts";

/** The channel every node's writers notify; the payload is `<schema>:<head seq>`. */
export const changesChannel = "meridian_changes";

export interface PostgresChangeFeedOptions {
  /** Connection settings of the listening connection. */
  connection: pg.ClientConfig;
  schema: string;
  /** Change-log records with seq > since, oldest first. */
  read(since: number, limit: number): Promise<ChangeRecord[]>;
  /** The change log's head seq. */
  head(): Promise<number>;
  /** A listener that threw, a lost connection, a failed read. */
  onError(error: unknown): void;
  /** First wait before reconnecting the listening connection (doubles up to 5 s). */
  reconnectDelayMs?: number;
}

const readBatch = 1000;
const maxReconnectDelayMs = 5000;

export class PostgresChangeFeed {
  private readonly listeners = new Set<CommitListener>();
  private delivered = 0;
  private target = 0;
  private running: Promise<void> | undefined;
  private waiters: { seq: number; resolve: () => void }[] = [];
  private client: pg.Client | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private reconnectDelay: number;
  private closed = false;

  constructor(private readonly options: PostgresChangeFeedOptions) {
    this.reconnectDelay = options.reconnectDelayMs ?? 100;
  }

  /** Starts listening; records committed before this resolves are not announced. */
  async start(): Promise<void> {
    await this.listen();
    this.delivered = await this.options.head();
    this.target = this.delivered;
  }

  subscribe(listener: CommitListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves once every record through `seq` went to the listeners (or a read failed). */
  deliverThrough(seq: number): Promise<void> {
    if (seq <= this.delivered || this.closed) return Promise.resolve();
    const done = new Promise<void>((resolve) => this.waiters.push({ seq, resolve }));
    this.wake(seq);
    return done;
  }

  /** The process id of the listening connection's backend (tests end it to drop it). */
  async listenerPid(): Promise<number | undefined> {
    const client = this.client;
    if (!client) return undefined;
    const { rows } = await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
    return rows[0]?.pid;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.retryTimer);
    await this.running;
    this.release(Number.POSITIVE_INFINITY);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => {});
  }

  private async listen(): Promise<void> {
    const client = new pg.Client(this.options.connection);
    // Without a handler a dropped connection's error would end the process.
    client.on("error", (error) => this.lost(client, error));
    client.on("end", () => this.lost(client, undefined));
    client.on("notification", (message) => {
      const payload = message.payload ?? "";
      const at = payload.lastIndexOf(":");
      if (message.channel !== changesChannel || payload.slice(0, at) !== this.options.schema) {
        return;
      }
      this.wake(Number(payload.slice(at + 1)));
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${changesChannel}`);
    } catch (error) {
      await client.end().catch(() => {});
      throw error;
    }
    if (this.closed) {
      await client.end().catch(() => {});
      return;
    }
    this.client = client;
  }

  private lost(client: pg.Client, error: unknown): void {
    if (this.client !== client || this.closed) return;
    this.client = undefined;
    this.options.onError(
      new Error("the metadata store's change listener lost its connection", { cause: error }),
    );
    client.end().catch(() => {});
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnect().catch((error: unknown) => {
        this.options.onError(error);
        this.reconnectDelay = Math.min(this.reconnectDelay * 2, maxReconnectDelayMs);
        this.scheduleReconnect();
      });
    }, this.reconnectDelay);
    this.reconnectTimer.unref();
  }

  private async reconnect(): Promise<void> {
    if (this.client === undefined) await this.listen();
    // What was committed while nobody listened is read now.
    this.wake(await this.options.head());
    this.reconnectDelay = this.options.reconnectDelayMs ?? 100;
  }

  private wake(seq: number): void {
    if (!Number.isFinite(seq) || this.closed) return;
    if (seq > this.target) this.target = seq;
    if (this.running || this.target <= this.delivered) return;
    this.running = this.deliver().finally(() => {
      this.running = undefined;
      // A wake-up that came while the last read was on its way.
      if (this.target > this.delivered && this.retryTimer === undefined) this.wake(this.target);
    });
  }

  private async deliver(): Promise<void> {
    while (this.target > this.delivered && !this.closed) {
      let batch: ChangeRecord[];
      try {
        batch = await this.options.read(this.delivered, readBatch);
      } catch (error) {
        // The writers' commits stand: they are released, and the records are read again.
        this.options.onError(error);
        this.release(this.target);
        this.retryLater();
        return;
      }
      const last = batch.at(-1);
      if (last === undefined) {
        // Nothing past what was delivered: a wake-up for a seq this store cannot see.
        this.release(this.target);
        this.target = this.delivered;
        return;
      }
      for (const listener of this.listeners) {
        try {
          listener(batch);
        } catch (error) {
          this.options.onError(error);
        }
      }
      this.delivered = last.seq;
      this.release(this.delivered);
    }
  }

  private retryLater(): void {
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.wake(this.target);
    }, 1000);
    this.retryTimer.unref();
  }

  private release(through: number): void {
    const ready = this.waiters.filter((w) => w.seq <= through);
    this.waiters = this.waiters.filter((w) => w.seq > through);
    for (const waiter of ready) waiter.resolve();
  }
}
