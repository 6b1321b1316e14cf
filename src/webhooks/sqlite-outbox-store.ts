// The webhook outbox of a replica in its own SQLite file in the data folder (webhooks.db),
// for a replica whose metadata is the embedded SQLite file. Events and the cursor move in
// one transaction, so that after a crash every change is turned into its events exactly
// once and every pending event is still there (at-least-once delivery). Everything waits
// on disk; callers read small windows.
import Database from "better-sqlite3";
import { SqliteWalSync } from "../metadata/sqlite-wal-sync.ts";
import type {
  Attempt,
  EventState,
  NewEvent,
  OutboxCursor,
  OutboxEvent,
  OutboxStore,
  PendingStats,
} from "./outbox-store.ts";
import { type EventRow, eventFromRow } from "./outbox-store.ts";

const schema = `
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  webhook TEXT NOT NULL,
  event_key TEXT NOT NULL,
  repository TEXT NOT NULL,
  action TEXT NOT NULL,
  payload TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  UNIQUE (webhook, event_key)
);
CREATE INDEX IF NOT EXISTS events_heads ON events (state, webhook, repository, seq);
CREATE INDEX IF NOT EXISTS events_due ON events (state, next_at);
CREATE TABLE IF NOT EXISTS attempts (
  event_seq INTEGER NOT NULL,
  at INTEGER NOT NULL,
  status INTEGER,
  latency_ms INTEGER NOT NULL,
  excerpt TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_event ON attempts (event_seq);
CREATE TABLE IF NOT EXISTS cursor (one INTEGER PRIMARY KEY CHECK (one = 1), seq INTEGER NOT NULL, log TEXT NOT NULL);
`;

export class SqliteOutboxStore implements OutboxStore {
  private readonly db: Database.Database;
  private readonly sql;
  /** Flushes the WAL after each write, off the event loop (durable files only). */
  private readonly walSync: SqliteWalSync | undefined;

  constructor(path: string, options: { durable?: boolean } = {}) {
    this.db = new Database(path);
    this.db.pragma("journal_mode = WAL");
    // As the metadata store: commits unflushed, then flushed in the thread pool before the
    // write resolves (sqlite-wal-sync.ts), so that no fsync blocks the event loop.
    this.db.pragma("synchronous = NORMAL");
    this.walSync =
      options.durable !== false && path !== ":memory:"
        ? new SqliteWalSync(`${path}-wal`)
        : undefined;
    this.db.exec(schema);
    const db = this.db;
    this.sql = {
      cursor: db.prepare("SELECT seq, log FROM cursor WHERE one = 1"),
      setCursor: db.prepare(
        "INSERT INTO cursor (one, seq, log) VALUES (1, ?, ?) ON CONFLICT (one) DO UPDATE SET seq = excluded.seq, log = excluded.log",
      ),
      insert: db.prepare(
        `INSERT OR IGNORE INTO events (id, webhook, event_key, repository, action, payload, state, next_at, created_at)
         VALUES (@id, @webhook, @eventKey, @repository, @action, @payload, 'pending', @createdAt, @createdAt)`,
      ),
      // The head of each (webhook, repository) queue that is due: one repository's events
      // go out in order, and a failing one holds back only its own repository's later ones.
      due: db.prepare(
        `SELECT * FROM events e WHERE e.state = 'pending' AND e.next_at <= ?
           AND e.seq = (SELECT MIN(p.seq) FROM events p
                        WHERE p.state = 'pending' AND p.webhook = e.webhook AND p.repository = e.repository)
         ORDER BY e.next_at, e.seq LIMIT ?`,
      ),
      nextWake: db.prepare("SELECT MIN(next_at) AS at FROM events WHERE state = 'pending'"),
      finish: db.prepare("UPDATE events SET state = ?, attempts = ?, next_at = ? WHERE seq = ?"),
      addAttempt: db.prepare(
        "INSERT INTO attempts (event_seq, at, status, latency_ms, excerpt) VALUES (?, ?, ?, ?, ?)",
      ),
      byWebhook: db.prepare("SELECT * FROM events WHERE webhook = ? ORDER BY seq DESC LIMIT ?"),
      byId: db.prepare("SELECT * FROM events WHERE id = ?"),
      attemptsOf: db.prepare(
        "SELECT at, status, latency_ms AS latencyMs, excerpt FROM attempts WHERE event_seq = ? ORDER BY rowid",
      ),
      redeliver: db.prepare(
        "UPDATE events SET state = 'pending', attempts = 0, next_at = ? WHERE webhook = ? AND id = ?",
      ),
      stats: db.prepare(
        "SELECT webhook, COUNT(*) AS depth, MIN(created_at) AS oldestCreatedAt FROM events WHERE state = 'pending' GROUP BY webhook",
      ),
      pruneAttempts: db.prepare(
        "DELETE FROM attempts WHERE event_seq IN (SELECT seq FROM events WHERE state != 'pending' AND created_at < ?)",
      ),
      pruneEvents: db.prepare("DELETE FROM events WHERE state != 'pending' AND created_at < ?"),
    };
  }

  async cursor(): Promise<OutboxCursor | undefined> {
    return this.sql.cursor.get() as OutboxCursor | undefined;
  }

  async enqueue(events: readonly NewEvent[], cursor: OutboxCursor): Promise<number> {
    const added = this.db.transaction(() => {
      let count = 0;
      for (const event of events) count += this.sql.insert.run(event).changes;
      this.sql.setCursor.run(cursor.seq, cursor.log);
      return count;
    })();
    await this.walSync?.sync();
    return added;
  }

  async due(now: number, limit: number): Promise<OutboxEvent[]> {
    return (this.sql.due.all(now, limit) as EventRow[]).map(eventFromRow);
  }

  async nextWakeAt(): Promise<number | undefined> {
    const row = this.sql.nextWake.get() as { at: number | null };
    return row.at ?? undefined;
  }

  async settle(
    seq: number,
    attempt: Attempt,
    next: { state: EventState; attempts: number; nextAt: number },
  ): Promise<void> {
    this.db.transaction(() => {
      this.sql.addAttempt.run(seq, attempt.at, attempt.status, attempt.latencyMs, attempt.excerpt);
      this.sql.finish.run(next.state, next.attempts, next.nextAt, seq);
    })();
    await this.walSync?.sync();
  }

  async events(webhook: string, limit: number): Promise<(OutboxEvent & { log: Attempt[] })[]> {
    return (this.sql.byWebhook.all(webhook, limit) as EventRow[]).map((row) => ({
      ...eventFromRow(row),
      log: this.sql.attemptsOf.all(row.seq) as Attempt[],
    }));
  }

  async event(id: string): Promise<OutboxEvent | undefined> {
    const row = this.sql.byId.get(id) as EventRow | undefined;
    return row ? eventFromRow(row) : undefined;
  }

  async addSettled(event: NewEvent, attempt: Attempt, state: EventState): Promise<void> {
    this.db.transaction(() => {
      const seq = Number(this.sql.insert.run(event).lastInsertRowid);
      this.sql.addAttempt.run(seq, attempt.at, attempt.status, attempt.latencyMs, attempt.excerpt);
      this.sql.finish.run(state, 1, event.createdAt, seq);
    })();
    await this.walSync?.sync();
  }

  async redeliver(webhook: string, id: string, now: number): Promise<boolean> {
    const found = this.sql.redeliver.run(now, webhook, id).changes > 0;
    await this.walSync?.sync();
    return found;
  }

  async pendingStats(): Promise<PendingStats[]> {
    return this.sql.stats.all() as PendingStats[];
  }

  async prune(before: number): Promise<void> {
    this.db.transaction(() => {
      this.sql.pruneAttempts.run(before);
      this.sql.pruneEvents.run(before);
    })();
  }

  async close(): Promise<void> {
    await this.walSync?.close();
    if (this.db.open) this.db.close();
  }
}
