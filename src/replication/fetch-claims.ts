// Which process of a replica fetches a blob from the peers: the processes of a replica
// (workers over one data folder, nodes over one database and object store) each have a
// fetcher, and a blob wanted by two of them at once (the leader's follower and another
// node's read-through of a pull) must cross the WAN once and be written into its upload
// session by one writer. A claim is held while the fetch runs and renewed; a process that
// dies leaves a claim that expires, so another takes the fetch over within seconds.

export interface FetchClaim {
  /** Gives the claim up (the fetch ended, stored or failed). */
  release(): Promise<void>;
}

export interface FetchClaims {
  /** The claim on fetching `digest`, or undefined while another process holds it. */
  claim(digest: string): Promise<FetchClaim | undefined>;
  /**
   * Stops renewing the claims this process holds, without giving them up (the process
   * stops; a fetch it was running is taken over once they expire).
   */
  close(): Promise<void>;
}

/** How long a claim lasts without renewal: how soon a dead holder's fetch is taken over. */
export const claimTtlMs = 15_000;

/** How often a holder renews its claim (well inside the TTL). */
export const claimRenewMs = 5_000;

/**
 * The renewals of one holder's claims: each claim is renewed every `claimRenewMs` (or a
 * third of a shorter TTL) until released; `renew` says whether the claim was still this
 * holder's (a holder stalled past the TTL may have lost it, and then stops renewing: the
 * digest check at commit keeps a second writer harmless). `stopAll` is the holder's close.
 */
export class ClaimRenewals {
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly ttlMs: number,
    private readonly onError: (error: unknown) => void,
  ) {}

  hold(renew: () => Promise<boolean>, release: () => Promise<void>): FetchClaim {
    const stop = () => {
      clearInterval(timer);
      this.timers.delete(timer);
    };
    const timer = setInterval(
      () => {
        renew()
          .then((still) => {
            if (!still) stop();
          })
          .catch(this.onError);
      },
      Math.min(claimRenewMs, this.ttlMs / 3),
    );
    timer.unref();
    this.timers.add(timer);
    return {
      release: async () => {
        if (!this.timers.has(timer)) return;
        stop();
        await release();
      },
    };
  }

  /** Stops renewing every claim held, without giving them up. */
  stopAll(): void {
    for (const timer of this.timers) clearInterval(timer);
    this.timers.clear();
  }
}
