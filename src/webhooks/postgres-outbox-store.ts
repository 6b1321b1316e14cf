// The webhook outbox of a region whose nodes share a PostgreSQL database: the tables of
// migration 3 (metadata/postgres-schema.ts), read and written by whichever node leads. A
// leader that dies leaves its pending events and its cursor here, and the node that takes
// the lead next delivers them (at least once: an attempt cut short by the death is sent
// again). The same behaviour as the SQLite file (outbox-store-suite.ts).
import type pg from "pg";
import { inTransaction } from "../metadata/postgres-transaction.ts";
import {
  type Attempt,
  type EventRow,
  type EventState,
  eventFromRow,
  type NewEvent,
  type OutboxCursor,
  type OutboxEvent,
  type OutboxStore,
  type PendingStats,
} from "./outbox-store.ts";

const insert = `INSERT INTO webhook_events
  (id, webhook, event_key, repository, action, payload, state, next_at, created_at)
  VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $7)
  ON CONFLICT DO NOTHING RETURNING seq`;

const addAttempt = `INSERT INTO webhook_attempts (event_seq, at, status, latency_ms, excerpt)
  VALUES ($1, $2, $3, $4, $5)`;

const finish = "UPDATE webhook_events SET state = $1, attempts = $2, next_at = $3 WHERE seq = $4";

const eventValues = (event: NewEvent) => [
  event.id,
  event.webhook,
  event.eventKey,
  event.repository,
  event.action,
  event.payload,
  event.createdAt,
];

const attemptValues = (seq: number, attempt: Attempt) => [
  seq,
  attempt.at,
  attempt.status,
  attempt.latencyMs,
  attempt.excerpt,
];

export class PostgresOutboxStore implements OutboxStore {
  /** `pool`: connections whose search_path is the region's schema; closed by its owner. */
  constructor(private readonly pool: pg.Pool) {}

  async cursor(): Promise<OutboxCursor | undefined> {
    const { rows } = await this.pool.query<{ seq: string; log: string }>(
      "SELECT seq, log FROM webhook_cursor",
    );
    const row = rows[0];
    return row ? { seq: Number(row.seq), log: row.log } : undefined;
  }

  async enqueue(events: readonly NewEvent[], cursor: OutboxCursor): Promise<number> {
    return inTransaction(this.pool, async (client) => {
      let added = 0;
      for (const event of events)
        added += (await client.query(insert, eventValues(event))).rowCount ?? 0;
      await client.query(
        `INSERT INTO webhook_cursor (one, seq, log) VALUES (true, $1, $2)
         ON CONFLICT (one) DO UPDATE SET seq = excluded.seq, log = excluded.log`,
        [cursor.seq, cursor.log],
      );
      return added;
    });
  }

  async due(now: number, limit: number): Promise<OutboxEvent[]> {
    const { rows } = await this.pool.query<EventRow>(
      `SELECT * FROM webhook_events e WHERE e.state = 'pending' AND e.next_at <= $1
         AND e.seq = (SELECT min(p.seq) FROM webhook_events p
                      WHERE p.state = 'pending' AND p.webhook = e.webhook AND p.repository = e.repository)
       ORDER BY e.next_at, e.seq LIMIT $2`,
      [now, limit],
    );
    return rows.map(eventFromRow);
  }

  async nextWakeAt(): Promise<number | undefined> {
    const { rows } = await this.pool.query<{ at: string | null }>(
      "SELECT min(next_at) AS at FROM webhook_events WHERE state = 'pending'",
    );
    const at = rows[0]?.at;
    return at === null || at === undefined ? undefined : Number(at);
  }

  async settle(
    seq: number,
    attempt: Attempt,
    next: { state: EventState; attempts: number; nextAt: number },
  ): Promise<void> {
    await inTransaction(this.pool, async (client) => {
      await client.query(addAttempt, attemptValues(seq, attempt));
      await client.query(finish, [next.state, next.attempts, next.nextAt, seq]);
    });
  }

  async events(webhook: string, limit: number): Promise<(OutboxEvent & { log: Attempt[] })[]> {
    const { rows } = await this.pool.query<EventRow>(
      "SELECT * FROM webhook_events WHERE webhook = $1 ORDER BY seq DESC LIMIT $2",
      [webhook, limit],
    );
    const events = rows.map(eventFromRow);
    const attempts = await this.pool.query<{
      event_seq: string;
      at: string;
      status: number | null;
      latency_ms: number;
      excerpt: string;
    }>(
      "SELECT event_seq, at, status, latency_ms, excerpt FROM webhook_attempts WHERE event_seq = ANY($1) ORDER BY id",
      [events.map((event) => event.seq)],
    );
    const logs = new Map<number, Attempt[]>();
    for (const row of attempts.rows) {
      const seq = Number(row.event_seq);
      const log = logs.get(seq) ?? [];
      log.push({
        at: Number(row.at),
        status: row.status,
        latencyMs: row.latency_ms,
        excerpt: row.excerpt,
      });
      logs.set(seq, log);
    }
    return events.map((event) => ({ ...event, log: logs.get(event.seq) ?? [] }));
  }

  async event(id: string): Promise<OutboxEvent | undefined> {
    const { rows } = await this.pool.query<EventRow>("SELECT * FROM webhook_events WHERE id = $1", [
      id,
    ]);
    return rows[0] ? eventFromRow(rows[0]) : undefined;
  }

  async addSettled(event: NewEvent, attempt: Attempt, state: EventState): Promise<void> {
    await inTransaction(this.pool, async (client) => {
      const { rows } = await client.query<{ seq: string }>(insert, eventValues(event));
      const seq = rows[0]?.seq;
      // An id seen before (ids are random: only a replayed request) keeps its first record.
      if (seq === undefined) return;
      await client.query(addAttempt, attemptValues(Number(seq), attempt));
      await client.query(finish, [state, 1, event.createdAt, Number(seq)]);
    });
  }

  async redeliver(webhook: string, id: string, now: number): Promise<boolean> {
    const result = await this.pool.query(
      "UPDATE webhook_events SET state = 'pending', attempts = 0, next_at = $1 WHERE webhook = $2 AND id = $3",
      [now, webhook, id],
    );
    return (result.rowCount ?? 0) > 0;
  }

  async pendingStats(): Promise<PendingStats[]> {
    const { rows } = await this.pool.query<{ webhook: string; depth: string; oldest: string }>(
      `SELECT webhook, count(*) AS depth, min(created_at) AS oldest FROM webhook_events
       WHERE state = 'pending' GROUP BY webhook`,
    );
    return rows.map((row) => ({
      webhook: row.webhook,
      depth: Number(row.depth),
      oldestCreatedAt: Number(row.oldest),
    }));
  }

  async prune(before: number): Promise<void> {
    await inTransaction(this.pool, async (client) => {
      await client.query(
        `DELETE FROM webhook_attempts WHERE event_seq IN
           (SELECT seq FROM webhook_events WHERE state <> 'pending' AND created_at < $1)`,
        [before],
      );
      await client.query(
        "DELETE FROM webhook_events WHERE state <> 'pending' AND created_at < $1",
        [before],
      );
    });
  }

  async close(): Promise<void> {}
}
