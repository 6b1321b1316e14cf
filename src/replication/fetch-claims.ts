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
 * Renews a claim every `claimRenewMs` (or a third of a shorter TTL) until released; `renew` says whether the claim was
 * still this holder's (a holder stalled past the TTL may have lost it, and then stops
 * renewing: the digest check at commit keeps a second writer harmless).
 */
export function heldClaim(options: {
  renew: () => Promise<boolean>;
  release: () => Promise<void>;
  onError: (error: unknown) => void;
  /** The renewal timers of the holder's claims, which its close() stops. */
  renewals: Set<NodeJS.Timeout>;
  /** How long the claim lasts unrenewed: it is renewed three times within that. */
  ttlMs: number;
}): FetchClaim {
  const { renewals } = options;
  const stop = () => {
    clearInterval(timer);
    renewals.delete(timer);
  };
  const timer = setInterval(
    () => {
      options
        .renew()
        .then((still) => {
          if (!still) stop();
        })
        .catch(options.onError);
    },
    Math.min(claimRenewMs, options.ttlMs / 3),
  );
  timer.unref();
  renewals.add(timer);
  return {
    async release() {
      if (!renewals.has(timer)) return;
      stop();
      await options.release();
    },
  };
}
