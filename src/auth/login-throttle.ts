// Failed logins, per client address: a token bucket that every attempt draws from and a
// successful one gives back. A client may fail `burst` times at once, then once every
// `1 / refillPerSecond` seconds; past that it gets 429 TOOMANYREQUESTS with Retry-After,
// without any scrypt run, so guessing passwords is slow and a burst of wrong ones costs
// the server little. An attempt draws before its check runs, so that many at once from one
// client cannot all slip past the bucket while their checks are still running.
import { OciError } from "../oci/oci-error.ts";

export interface LoginThrottleOptions {
  /** Failures a client may have in quick succession. */
  burst: number;
  /** Failures per second a client regains. */
  refillPerSecond: number;
  /** Milliseconds since the epoch (tests pass their own clock). */
  now?: () => number;
  /** Clients tracked at most; fully refilled buckets are dropped first. */
  maxClients?: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class LoginThrottle {
  private readonly buckets = new Map<string, Bucket>();
  private readonly now: () => number;
  private readonly maxClients: number;

  constructor(private readonly options: LoginThrottleOptions) {
    this.now = options.now ?? Date.now;
    this.maxClients = options.maxClients ?? 100_000;
  }

  /** Draws one attempt for the client; throws TOOMANYREQUESTS when it has none left. */
  take(client: string): void {
    const bucket = this.refilled(client);
    if (bucket.tokens < 1) {
      const seconds = Math.ceil((1 - bucket.tokens) / this.options.refillPerSecond);
      throw new OciError(
        "TOOMANYREQUESTS",
        { reason: "too many failed logins from this client" },
        { headers: { "Retry-After": String(Math.max(1, seconds)) } },
      );
    }
    bucket.tokens -= 1;
    this.buckets.set(client, bucket);
  }

  /** Gives back an attempt that succeeded (or never ran). */
  refund(client: string): void {
    const bucket = this.buckets.get(client);
    if (!bucket) return;
    bucket.tokens = Math.min(this.options.burst, bucket.tokens + 1);
    if (bucket.tokens >= this.options.burst) this.buckets.delete(client);
  }

  private refilled(client: string): Bucket {
    const now = this.now();
    const bucket = this.buckets.get(client);
    if (!bucket) {
      if (this.buckets.size >= this.maxClients) this.prune(now);
      return { tokens: this.options.burst, at: now };
    }
    const regained = ((now - bucket.at) / 1000) * this.options.refillPerSecond;
    bucket.tokens = Math.min(this.options.burst, bucket.tokens + regained);
    bucket.at = now;
    return bucket;
  }

  /** Drops the clients whose buckets are full again; if none are, the oldest half. */
  private prune(now: number): void {
    for (const [client, bucket] of this.buckets) {
      const regained = ((now - bucket.at) / 1000) * this.options.refillPerSecond;
      if (bucket.tokens + regained >= this.options.burst) this.buckets.delete(client);
    }
    if (this.buckets.size < this.maxClients) return;
    let drop = Math.floor(this.buckets.size / 2);
    for (const client of this.buckets.keys()) {
      if (drop-- <= 0) break;
      this.buckets.delete(client);
    }
  }
}
