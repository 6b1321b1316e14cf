// Bounds how many slow secret checks (scrypt) run at once, and how many may wait. Node runs
// scrypt on the libuv thread pool (4 threads by default), the same threads that blob reads,
// writes and fsyncs use: unbounded, a burst of logins fills the pool and every push and
// pull waits behind it. One check at a time leaves the other threads to blob I/O; a check
// that would wait behind too many others is refused (429) rather than queued without end.
import { OciError } from "../oci/oci-error.ts";

export class VerificationGate {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly concurrency: number,
    private readonly maxWaiting: number,
  ) {}

  /** Runs `check` when a slot is free; throws TOOMANYREQUESTS when too many already wait. */
  async run<T>(check: () => Promise<T>): Promise<T> {
    if (this.running >= this.concurrency) {
      if (this.waiting.length >= this.maxWaiting) {
        throw new OciError(
          "TOOMANYREQUESTS",
          { reason: "too many logins being checked" },
          { headers: { "Retry-After": "1" } },
        );
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.running += 1;
    }
    try {
      return await check();
    } finally {
      // The slot passes straight to the next waiter, so `running` stays counted for it.
      const next = this.waiting.shift();
      if (next) next();
      else this.running -= 1;
    }
  }
}

/**
 * The process's gate: the thread pool it protects is one per process, so every
 * Credentials instance of the process shares it.
 */
export const scryptGate = new VerificationGate(1, 64);
