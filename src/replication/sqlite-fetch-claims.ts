// Fetch claims among the worker processes of one replica, in the replica's replication.db
// (SQLite in WAL mode, shared by the workers; they share a machine, so one clock).
import { randomUUID } from "node:crypto";
import Database from "better-sqlite3";
import { ClaimRenewals, claimTtlMs, type FetchClaim, type FetchClaims } from "./fetch-claims.ts";

export class SqliteFetchClaims implements FetchClaims {
  private readonly db: Database.Database;
  private readonly holder = randomUUID();
  private readonly renewals: ClaimRenewals;
  private readonly sql;

  constructor(
    path: string,
    onError: (error: unknown) => void,
    private readonly ttlMs = claimTtlMs,
    private readonly now: () => number = Date.now,
  ) {
    this.renewals = new ClaimRenewals(ttlMs, onError);
    this.db = new Database(path);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = NORMAL");
    this.db.exec(
      "CREATE TABLE IF NOT EXISTS fetch_claims (digest TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at INTEGER NOT NULL)",
    );
    this.sql = {
      take: this.db.prepare<[string, string, number, number], { holder: string }>(
        `INSERT INTO fetch_claims (digest, holder, expires_at) VALUES (?, ?, ?)
         ON CONFLICT (digest) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
         WHERE fetch_claims.expires_at < ? OR fetch_claims.holder = excluded.holder
         RETURNING holder`,
      ),
      renew: this.db.prepare<[number, string, string]>(
        "UPDATE fetch_claims SET expires_at = ? WHERE digest = ? AND holder = ?",
      ),
      release: this.db.prepare<[string, string]>(
        "DELETE FROM fetch_claims WHERE digest = ? AND holder = ?",
      ),
    };
  }

  async claim(digest: string): Promise<FetchClaim | undefined> {
    const now = this.now();
    if (!this.sql.take.get(digest, this.holder, now + this.ttlMs, now)) return undefined;
    return this.renewals.hold(
      async () => this.sql.renew.run(this.now() + this.ttlMs, digest, this.holder).changes > 0,
      async () => {
        this.sql.release.run(digest, this.holder);
      },
    );
  }

  async close(): Promise<void> {
    this.renewals.stopAll();
    if (this.db.open) this.db.close();
  }
}
