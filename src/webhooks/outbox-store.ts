// The webhook outbox of this replica, in its own SQLite file in the data folder
// (webhooks.db): the events waiting to be delivered or done with, each delivery attempt,
// and the cursor into the metadata change log that the events were derived from. Events
// and the cursor move in one transaction, so that after a crash every change is turned
// into its events exactly once and every pending event is still there (at-least-once
// delivery). Everything waits on disk; callers read small windows.
import Database from "better-sqlite3";

export type EventState = "pending" | "delivered" | "dead";

export interface NewEvent {
  id: string;
  webhook: string;
  eventKey: string;
  repository: string;
  action: string;
  /** The exact body every attempt sends (so the signature is stable across retries). */
  payload: string;
  createdAt: number;
}

export interface OutboxEvent extends NewEvent {
  seq: number;
  state: EventState;
  attempts: number;
  nextAt: number;
}

export interface Attempt {
  at: number;
  /** HTTP status, or null when no answer came (refused, timeout, connection error). */
  status: number | null;
  latencyMs: number;
  /** The first bytes of the answer, or why there was none. */
  excerpt: string;
}

export interface PendingStats {
  webhook: string;
  depth: number;
  oldestCreatedAt: number;
}

interface EventRow {
  seq: number;
  id: string;
  webhook: string;
  event_key: string;
  repository: string;
  action: string;
  payload: string;
  state: EventState;
  attempts: number;
  next_at: number;
  created_at: number;
}

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

export class OutboxStore {
  private readonly db: Database.Database;
  private readonly sql;

  constructor(path: string, options: { durable?: boolean } = {}) {
    this.db = new Database(path);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma(`synchronous = ${options.durable === false ? "NORMAL" : "FULL"}`);
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

  /** The change-log position events were derived up to, and which log it counts in. */
  cursor(): { seq: number; log: string } | undefined {
    return this.sql.cursor.get() as { seq: number; log: string } | undefined;
  }

  /** Adds events (one per webhook and event key: a repeat is ignored) and moves the cursor. */
  enqueue(events: readonly NewEvent[], cursor: { seq: number; log: string }): number {
    return this.db.transaction(() => {
      let added = 0;
      for (const event of events) added += this.sql.insert.run(event).changes;
      this.sql.setCursor.run(cursor.seq, cursor.log);
      return added;
    })();
  }

  /** Up to `limit` events due at `now`, at most one per (webhook, repository). */
  due(now: number, limit: number): OutboxEvent[] {
    return (this.sql.due.all(now, limit) as EventRow[]).map(toEvent);
  }

  /** When the earliest pending event is due, or undefined when none is pending. */
  nextWakeAt(): number | undefined {
    const row = this.sql.nextWake.get() as { at: number | null };
    return row.at ?? undefined;
  }

  /** Records an attempt and the event's new state, in one transaction. */
  settle(
    seq: number,
    attempt: Attempt,
    next: { state: EventState; attempts: number; nextAt: number },
  ) {
    this.db.transaction(() => {
      this.sql.addAttempt.run(seq, attempt.at, attempt.status, attempt.latencyMs, attempt.excerpt);
      this.sql.finish.run(next.state, next.attempts, next.nextAt, seq);
    })();
  }

  /** A webhook's newest events (newest first) with their attempts. */
  events(webhook: string, limit: number): (OutboxEvent & { log: Attempt[] })[] {
    return (this.sql.byWebhook.all(webhook, limit) as EventRow[]).map((row) => ({
      ...toEvent(row),
      log: this.sql.attemptsOf.all(row.seq) as Attempt[],
    }));
  }

  event(id: string): OutboxEvent | undefined {
    const row = this.sql.byId.get(id) as EventRow | undefined;
    return row ? toEvent(row) : undefined;
  }

  /** Records an event sent outside the queue (a ping) with its one attempt. */
  addSettled(event: NewEvent, attempt: Attempt, state: EventState): void {
    this.db.transaction(() => {
      const seq = Number(this.sql.insert.run(event).lastInsertRowid);
      this.sql.addAttempt.run(seq, attempt.at, attempt.status, attempt.latencyMs, attempt.excerpt);
      this.sql.finish.run(state, 1, event.createdAt, seq);
    })();
  }

  /** Puts a delivered or dead-lettered event back in the queue; false when unknown. */
  redeliver(webhook: string, id: string, now: number): boolean {
    return this.sql.redeliver.run(now, webhook, id).changes > 0;
  }

  /** Queue depth and oldest pending event per webhook. */
  pendingStats(): PendingStats[] {
    return this.sql.stats.all() as PendingStats[];
  }

  /** Forgets finished events (and their attempts) created before `before`. */
  prune(before: number): void {
    this.db.transaction(() => {
      this.sql.pruneAttempts.run(before);
      this.sql.pruneEvents.run(before);
    })();
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

function toEvent(row: EventRow): OutboxEvent {
  return {
    seq: row.seq,
    id: row.id,
    webhook: row.webhook,
    eventKey: row.event_key,
    repository: row.repository,
    action: row.action,
    payload: row.payload,
    state: row.state,
    attempts: row.attempts,
    nextAt: row.next_at,
    createdAt: row.created_at,
  };
}
