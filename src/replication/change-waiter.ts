// Lets a feed request wait (long-poll) until the change log grows past a sequence
// number, so that a new record reaches peers in milliseconds instead of at a next poll.
import type { ReplicaState } from "../registry/replica-state.ts";

export class ChangeWaiter {
  private head = 0;
  private waiters = new Set<() => void>();
  private unsubscribe: () => void = () => {};

  private constructor() {}

  static async attach(log: Pick<ReplicaState, "headSeq" | "onCommit">): Promise<ChangeWaiter> {
    const waiter = new ChangeWaiter();
    waiter.head = await log.headSeq();
    waiter.unsubscribe = log.onCommit((changes) => {
      const last = changes[changes.length - 1];
      if (last) waiter.head = Math.max(waiter.head, last.seq);
      const waiting = waiter.waiters;
      waiter.waiters = new Set();
      for (const wake of waiting) wake();
    });
    return waiter;
  }

  /** Stops listening to commits (the replica is stopping). */
  detach(): void {
    this.unsubscribe();
  }

  /** Resolves when a record with seq > `since` exists, after `timeoutMs`, or on abort. */
  waitBeyond(since: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.head > since || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const check = () => {
        if (this.head > since) done();
        else this.waiters.add(check);
      };
      const timer = setTimeout(done, timeoutMs);
      signal?.addEventListener("abort", done, { once: true });
      this.waiters.add(check);
    });
  }
}
