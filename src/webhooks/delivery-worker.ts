// Delivers the outbox: takes the due events in small windows (at most `concurrency` in
// memory and in flight, however many wait on disk), one at a time per webhook and
// repository so that a repository's events arrive in order, and settles each attempt in
// the outbox. A failed attempt is retried after an exponential backoff with jitter, up to
// `maxAttempts`, then the event is dead-lettered (kept, with its log, for `redeliver`).
// Pushes never wait for any of this: the worker only reads what the event source wrote.
import type { Attempt, OutboxEvent, OutboxStore } from "./outbox-store.ts";
import type { Webhook } from "./webhook-record.ts";

export interface RetryPolicy {
  maxAttempts: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
}

export interface DeliveryListener {
  attempted(
    webhook: string,
    attempt: Attempt,
    retry: boolean,
    outcome: "delivered" | "failed" | "dead",
  ): void;
}

export interface DeliveryWorkerOptions {
  outbox: OutboxStore;
  /** The webhook as it is now; undefined once deleted. */
  webhook: (name: string) => Promise<Webhook | undefined>;
  /** One attempt; `signal` aborts it when the worker stops. */
  send: (webhook: Webhook, event: OutboxEvent, signal: AbortSignal) => Promise<Attempt>;
  retry: RetryPolicy;
  concurrency: number;
  now?: () => number;
  /** In [0, 1): the jitter's source. */
  random?: () => number;
  listener?: DeliveryListener;
  onError: (error: unknown) => void;
}

/**
 * The wait after the `failures`-th failed attempt: initial * 2^(failures-1), capped, and
 * jittered to between half and all of it so that receivers coming back are not stampeded.
 */
export function backoffMs(failures: number, policy: RetryPolicy, random: () => number): number {
  const full = Math.min(
    policy.maxBackoffMs,
    policy.initialBackoffMs * 2 ** Math.max(0, failures - 1),
  );
  return Math.round(full / 2 + (random() * full) / 2);
}

export class DeliveryWorker {
  private readonly inFlight = new Map<number, Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly stopping = new AbortController();
  /** The pass over the due events running now (one at a time). */
  private passing: Promise<void> | undefined;
  private again = false;
  private readonly now: () => number;
  private readonly random: () => number;
  /** The most events ever held at once (the bounded-memory promise, for tests). */
  maxHeld = 0;

  constructor(private readonly options: DeliveryWorkerOptions) {
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
  }

  /** Looks for due events now (after new events, a redeliver, a finished attempt). */
  wake(): void {
    if (this.stopped) return;
    if (this.passing) {
      this.again = true;
      return;
    }
    this.passing = this.pass()
      .catch((error: unknown) => this.options.onError(error))
      .finally(() => {
        this.passing = undefined;
        if (this.again) {
          this.again = false;
          this.wake();
        }
      });
  }

  /**
   * Stops taking events and aborts the attempts in flight; they stay pending as they were
   * (an attempt cut short by a stop is not counted), to be sent again after the restart.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    if (this.timer) clearTimeout(this.timer);
    await this.passing;
    await Promise.allSettled([...this.inFlight.values()]);
  }

  private async pass(): Promise<void> {
    const free = this.options.concurrency - this.inFlight.size;
    if (free > 0) {
      // Heads already in flight come back from the query: ask for enough to fill the slots.
      const due = await this.options.outbox.due(this.now(), free + this.inFlight.size);
      for (const event of due) {
        if (this.inFlight.size >= this.options.concurrency) break;
        if (this.inFlight.has(event.seq)) continue;
        const attempt = this.deliver(event).catch((error: unknown) => this.options.onError(error));
        this.inFlight.set(event.seq, attempt);
        this.maxHeld = Math.max(this.maxHeld, this.inFlight.size);
        void attempt.finally(() => {
          this.inFlight.delete(event.seq);
          this.wake();
        });
      }
    }
    await this.schedule();
  }

  /** Wakes at the earliest retry time still ahead. */
  private async schedule(): Promise<void> {
    const at = await this.options.outbox.nextWakeAt();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.stopped) return;
    if (at === undefined) return;
    const wait = Math.max(5, Math.min(60_000, at - this.now()));
    this.timer = setTimeout(() => this.wake(), wait);
    this.timer.unref();
  }

  private async deliver(event: OutboxEvent): Promise<void> {
    const webhook = await this.options.webhook(event.webhook);
    const { outbox, retry, listener } = this.options;
    if (!webhook) {
      const attempt = {
        at: this.now(),
        status: null,
        latencyMs: 0,
        excerpt: "the webhook was deleted",
      };
      await outbox.settle(event.seq, attempt, {
        state: "dead",
        attempts: event.attempts,
        nextAt: event.nextAt,
      });
      return;
    }
    const attempt = await this.options.send(webhook, event, this.stopping.signal);
    if (this.stopped) return;
    const attempts = event.attempts + 1;
    const isRetry = event.attempts > 0;
    if (attempt.status !== null && attempt.status >= 200 && attempt.status < 300) {
      await outbox.settle(event.seq, attempt, {
        state: "delivered",
        attempts,
        nextAt: event.nextAt,
      });
      listener?.attempted(webhook.name, attempt, isRetry, "delivered");
      return;
    }
    if (attempts >= retry.maxAttempts) {
      await outbox.settle(event.seq, attempt, { state: "dead", attempts, nextAt: event.nextAt });
      listener?.attempted(webhook.name, attempt, isRetry, "dead");
      return;
    }
    const nextAt = this.now() + backoffMs(attempts, retry, this.random);
    await outbox.settle(event.seq, attempt, { state: "pending", attempts, nextAt });
    listener?.attempted(webhook.name, attempt, isRetry, "failed");
  }
}
