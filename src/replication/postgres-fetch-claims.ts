// Fetch claims among the nodes of a region, in the region's PostgreSQL schema (table of
// migration 4). Expiry is the database's clock, so that the nodes' clocks need not agree.
import { randomUUID } from "node:crypto";
import type pg from "pg";
import { claimTtlMs, type FetchClaim, type FetchClaims, heldClaim } from "./fetch-claims.ts";

export class PostgresFetchClaims implements FetchClaims {
  private readonly holder = randomUUID();
  private readonly renewals = new Set<NodeJS.Timeout>();
  private readonly ttl: string;

  /** `pool`: connections whose search_path is the region's schema; closed by its owner. */
  constructor(
    private readonly pool: pg.Pool,
    private readonly onError: (error: unknown) => void,
    private readonly ttlMs = claimTtlMs,
  ) {
    this.ttl = `now() + interval '${Math.round(ttlMs)} milliseconds'`;
  }

  async claim(digest: string): Promise<FetchClaim | undefined> {
    const { rowCount } = await this.pool.query(
      `INSERT INTO blob_fetch_claims (digest, holder, expires_at) VALUES ($1, $2, ${this.ttl})
       ON CONFLICT (digest) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
       WHERE blob_fetch_claims.expires_at < now() OR blob_fetch_claims.holder = excluded.holder`,
      [digest, this.holder],
    );
    if (!rowCount) return undefined;
    return heldClaim({
      renew: async () => {
        const renewed = await this.pool.query(
          `UPDATE blob_fetch_claims SET expires_at = ${this.ttl} WHERE digest = $1 AND holder = $2`,
          [digest, this.holder],
        );
        return (renewed.rowCount ?? 0) > 0;
      },
      release: async () => {
        await this.pool.query("DELETE FROM blob_fetch_claims WHERE digest = $1 AND holder = $2", [
          digest,
          this.holder,
        ]);
      },
      onError: this.onError,
      renewals: this.renewals,
      ttlMs: this.ttlMs,
    });
  }

  async close(): Promise<void> {
    for (const timer of this.renewals) clearInterval(timer);
    this.renewals.clear();
  }
}
