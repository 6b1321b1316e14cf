// The rate at which blob bytes arrive, measured over the last few seconds, so that a
// replica still syncing can say how long the bytes it waits for will take.

const windowSeconds = 10;

export class TransferRate {
  /** Bytes received per whole second (ms since epoch / 1000), the last `windowSeconds`. */
  private readonly buckets = new Map<number, number>();

  constructor(private readonly now: () => number = Date.now) {}

  add(bytes: number): void {
    const second = Math.floor(this.now() / 1000);
    this.buckets.set(second, (this.buckets.get(second) ?? 0) + bytes);
    for (const key of this.buckets.keys()) {
      if (key <= second - windowSeconds) this.buckets.delete(key);
    }
  }

  /** Bytes per second over the window; 0 when nothing arrived in it. */
  bytesPerSecond(): number {
    const second = Math.floor(this.now() / 1000);
    let total = 0;
    let first = second;
    for (const [key, bytes] of this.buckets) {
      if (key <= second - windowSeconds) continue;
      total += bytes;
      first = Math.min(first, key);
    }
    // Measured from the first second that saw bytes: a transfer that began two seconds
    // ago is not averaged over ten.
    return total / Math.max(1, second - first + 1);
  }

  /** Seconds until `bytes` more arrive at the measured rate; undefined without a rate. */
  secondsFor(bytes: number): number | undefined {
    if (bytes <= 0) return 0;
    const rate = this.bytesPerSecond();
    return rate > 0 ? Math.ceil(bytes / rate) : undefined;
  }
}
