// Fetch claims among the nodes of a region, in the region's PostgreSQL schema (table of
// migration 4). Expiry is the database's clock, so that the nodes' clocks need not agree.
import { randomUUID } from "node:crypto";
import type pg from "pg";
import { ClaimRenewals, claimTtlMs, type FetchClaim, type FetchClaims } from "./fetch-claims.ts";

export class PostgresFetchClaims implements FetchClaims {
  private readonly holder = randomUUID();
  private readonly renewals: ClaimRenewals;
  private readonly ttl: string;

  /** `pool`: connections whose search_path is the region's schema; closed by its owner. */
  constructor(
    private readonly pool: pg.Pool,
    onError: (error: unknown) => void,
    ttlMs = claimTtlMs,
  ) {
    this.renewals = new ClaimRenewals(ttlMs, onError);
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
    return this.renewals.hold(
      async () => {
        const renewed = await this.pool.query(
          `UPDATE blob_fetch_claims SET expires_at = ${this.ttl} WHERE digest = $1 AND holder = $2`,
          [digest, this.holder],
        );
        return (renewed.rowCount ?? 0) > 0;
      },
      async () => {
        await this.pool.query("DELETE FROM blob_fetch_claims WHERE digest = $1 AND holder = $2", [
          digest,
          this.holder,
        ]);
      },
    );
  }

  async close(): Promise<void> {
    this.renewals.stopAll();
  }
}
