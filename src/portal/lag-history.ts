// The replication lag of each peer over the last hour, for the portal's health chart:
// this replica samples how far behind each peer it is (its followers know) every ten
// seconds while it runs, so that the chart shows the hour before the page opened. Kept
// in memory (360 samples at most): a restarted replica starts a new hour.

export interface LagSample {
  /** ms since epoch. */
  at: number;
  /** Lag in seconds by peer. */
  lag: Record<string, number>;
}

export interface LagHistoryOptions {
  /** Each peer's lag now. */
  sample: () => Promise<Record<string, number>>;
  intervalMs?: number;
  windowMs?: number;
  now?: () => number;
}

export class LagHistory {
  private readonly kept: LagSample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private sampling = false;

  constructor(private readonly options: LagHistoryOptions) {}

  start(): void {
    void this.takeSample();
    this.timer = setInterval(() => void this.takeSample(), this.options.intervalMs ?? 10_000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** The samples of the window, oldest first. */
  samples(): LagSample[] {
    this.trim();
    return [...this.kept];
  }

  /** Takes one sample now (the timer's job; tests call it). */
  async takeSample(): Promise<void> {
    if (this.sampling) return;
    this.sampling = true;
    try {
      const lag = await this.options.sample();
      this.kept.push({ at: this.now(), lag });
      this.trim();
    } catch {
      // A sample that cannot be had is a gap in the chart, not an error.
    } finally {
      this.sampling = false;
    }
  }

  private trim(): void {
    const oldest = this.now() - (this.options.windowMs ?? 3_600_000);
    while (this.kept.length > 0 && (this.kept[0]?.at ?? 0) < oldest) this.kept.shift();
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }
}
