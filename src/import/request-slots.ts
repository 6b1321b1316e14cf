// Caps the requests in flight to one source registry, across every import job of this
// replica: a registry that rate-limits (Docker Hub) sees at most `perSource` connections
// from us, however many jobs name it. A slot is held until the answer's body is consumed.

export class RequestSlots {
  private readonly sources = new Map<string, { active: number; waiting: (() => void)[] }>();

  constructor(readonly perSource = 4) {}

  /** Waits for a slot for `source` (host[:port]); resolves the function that frees it. */
  async acquire(source: string, signal?: AbortSignal): Promise<() => void> {
    let entry = this.sources.get(source);
    if (!entry) {
      entry = { active: 0, waiting: [] };
      this.sources.set(source, entry);
    }
    const state = entry;
    if (state.active >= this.perSource) {
      // A freed slot is handed over to the first waiter still counted as active, so that
      // no newcomer can slip in between.
      await new Promise<void>((resolve, reject) => {
        const wake = () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        };
        const onAbort = () => {
          state.waiting.splice(state.waiting.indexOf(wake), 1);
          reject(signal?.reason);
        };
        state.waiting.push(wake);
        signal?.addEventListener("abort", onAbort, { once: true });
      });
    } else {
      state.active += 1;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = state.waiting.shift();
      if (next) {
        next();
        return;
      }
      state.active -= 1;
      if (state.active === 0) this.sources.delete(source);
    };
  }

  /** Requests in flight to `source` now (for tests). */
  inFlight(source: string): number {
    return this.sources.get(source)?.active ?? 0;
  }
}
