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
}

/** How long a claim lasts without renewal: how soon a dead holder's fetch is taken over. */
export const claimTtlMs = 15_000;

/** How often a holder renews its claim (well inside the TTL). */
export const claimRenewMs = 5_000;

/**
 * Renews a claim every `claimRenewMs` until released; `renew` says whether the claim was
 * still this holder's (a holder stalled past the TTL may have lost it, and then stops
 * renewing: the digest check at commit keeps a second writer harmless).
 */
export function heldClaim(
  renew: () => Promise<boolean>,
  release: () => Promise<void>,
  onError: (error: unknown) => void,
): FetchClaim {
  const timer = setInterval(() => {
    renew()
      .then((still) => {
        if (!still) clearInterval(timer);
      })
      .catch(onError);
  }, claimRenewMs);
  timer.unref();
  return {
    async release() {
      clearInterval(timer);
      await release();
    },
  };
}
