// The webhook outbox of a replica: the events waiting to be delivered or done with, each
// delivery attempt, and the cursor into the metadata change log the events were derived
// from. Two drivers: a SQLite file in the data folder beside embedded metadata
// (sqlite-outbox-store.ts), and tables in the region's PostgreSQL database for nodes
// (postgres-outbox-store.ts), so that the node that takes the lead after another died
// delivers what it left pending. Both pass outbox-store-suite.ts.

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

/** The change-log position events were derived up to, and which log it counts in. */
export interface OutboxCursor {
  seq: number;
  log: string;
}

export interface OutboxStore {
  /** The change-log position events were derived up to, and which log it counts in. */
  cursor(): Promise<OutboxCursor | undefined>;
  /**
   * Adds events (one per webhook and event key: a repeat is ignored) and moves the cursor,
   * in one transaction; how many events were new.
   */
  enqueue(events: readonly NewEvent[], cursor: OutboxCursor): Promise<number>;
  /**
   * Up to `limit` events due at `now`, at most one per (webhook, repository): the head of
   * each queue, so that one repository's events go out in order and a failing one holds
   * back only its own repository's later ones.
   */
  due(now: number, limit: number): Promise<OutboxEvent[]>;
  /** When the earliest pending event is due, or undefined when none is pending. */
  nextWakeAt(): Promise<number | undefined>;
  /** Records an attempt and the event's new state, in one transaction. */
  settle(
    seq: number,
    attempt: Attempt,
    next: { state: EventState; attempts: number; nextAt: number },
  ): Promise<void>;
  /** A webhook's newest events (newest first) with their attempts. */
  events(webhook: string, limit: number): Promise<(OutboxEvent & { log: Attempt[] })[]>;
  event(id: string): Promise<OutboxEvent | undefined>;
  /** Records an event sent outside the queue (a ping) with its one attempt. */
  addSettled(event: NewEvent, attempt: Attempt, state: EventState): Promise<void>;
  /** Puts a delivered or dead-lettered event back in the queue; false when unknown. */
  redeliver(webhook: string, id: string, now: number): Promise<boolean>;
  /** Queue depth and oldest pending event per webhook. */
  pendingStats(): Promise<PendingStats[]>;
  /** Forgets finished events (and their attempts) created before `before`. */
  prune(before: number): Promise<void>;
  close(): Promise<void>;
}

/** An `events` row as both drivers' tables hold it (PostgreSQL's bigints come as text). */
export interface EventRow {
  seq: number | string;
  id: string;
  webhook: string;
  event_key: string;
  repository: string;
  action: string;
  payload: string;
  state: EventState;
  attempts: number;
  next_at: number | string;
  created_at: number | string;
}

export function eventFromRow(row: EventRow): OutboxEvent {
  return {
    seq: Number(row.seq),
    id: row.id,
    webhook: row.webhook,
    eventKey: row.event_key,
    repository: row.repository,
    action: row.action,
    payload: row.payload,
    state: row.state,
    attempts: row.attempts,
    nextAt: Number(row.next_at),
    createdAt: Number(row.created_at),
  };
}
