// Announces the commits that other connections make to a shared SQLite file: the nodes of
// one replica on one machine (worker processes) write the same database, and each node's
// feed long-polls and webhook source must wake on every commit, not only its own.
//
// SQLite's `PRAGMA data_version` changes exactly when another connection has committed
// since it was last read, so a poll of it costs one read of a page already cached. When
// it moved, the change log is read past what this node has accounted for, skipping its own
// records (already announced at their commit). The log's seqs are given in commit order
// (one writer at a time), so "accounted up to seq N" is one number plus the own records
// committed past it while another connection was also writing.
import type Database from "better-sqlite3";
import type { ChangeRecord } from "./metadata-store.ts";

export interface CommitWatchOptions {
  db: Database.Database;
  /** Change-log records with seq > since, oldest first, at most `limit`. */
  read: (since: number, limit: number) => ChangeRecord[];
  /** Hands other connections' records to the commit listeners. */
  announce: (records: ChangeRecord[]) => void;
  pollMs: number;
}

const pageSize = 512;

export class SqliteCommitWatch {
  private version: number;
  /** Every record up to this seq has been announced (its own or another's). */
  private accounted: number;
  /** This node's records past `accounted`, announced at their commit. */
  private readonly own = new Set<number>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly options: CommitWatchOptions,
    headSeq: number,
  ) {
    this.version = this.dataVersion();
    this.accounted = headSeq;
    this.timer = setInterval(() => this.poll(), options.pollMs);
    this.timer.unref();
  }

  /** This node committed `records` (and announced them). */
  ownCommitted(records: readonly ChangeRecord[]): void {
    const last = records[records.length - 1];
    if (!last) return;
    if (this.dataVersion() === this.version && this.own.size === 0) {
      // Nobody else committed since the last look: nothing lies between.
      this.accounted = Math.max(this.accounted, last.seq);
      return;
    }
    for (const record of records) this.own.add(record.seq);
  }

  /** Reads and announces what other connections committed since the last look. */
  poll(): void {
    if (!this.options.db.open) return;
    const version = this.dataVersion();
    if (version === this.version) return;
    this.version = version;
    for (;;) {
      const page = this.options.read(this.accounted, pageSize);
      const last = page[page.length - 1];
      if (!last) return;
      const others = page.filter((record) => !this.own.delete(record.seq));
      this.accounted = last.seq;
      if (others.length > 0) this.options.announce(others);
      if (page.length < pageSize) return;
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private dataVersion(): number {
    return this.options.db.pragma("data_version", { simple: true }) as number;
  }
}
