// Hybrid logical clock: stamps that follow wall time but never go backwards and never
// repeat, and that order changes from different replicas totally. A stamp is a
// fixed-width string so that comparing two stamps as strings compares them as clocks:
//
//   <physical ms, 13 digits>.<counter, 6 digits>.<replica id>
//
// The counter never overflows its six digits: the stamp after counter 999999 carries into
// the physical part (one millisecond on, counter 0), which keeps string order equal to
// clock order. That happens only when a million stamps fall in one millisecond, as when
// a peer's clock is ahead and this one is catching up; the physical part then runs ahead
// of wall time by at most a millisecond per million stamps.
import type { Stamp } from "../metadata/metadata-store.ts";

/** The largest counter the format holds. */
export const maxCounter = 999_999;

export class HybridClock {
  private physical = 0;
  private counter = 0;

  constructor(
    readonly replicaId: string,
    private readonly now: () => number = Date.now,
  ) {}

  /** A new stamp, greater than every stamp issued or observed before. */
  next(): Stamp {
    const wall = this.now();
    if (wall > this.physical) {
      this.physical = wall;
      this.counter = 0;
    } else if (this.counter >= maxCounter) {
      this.physical += 1;
      this.counter = 0;
    } else {
      this.counter += 1;
    }
    return formatStamp(this.physical, this.counter, this.replicaId);
  }

  /** How many milliseconds the stamp's physical time is ahead of this clock's wall time. */
  aheadOfWallMs(stamp: Stamp): number {
    const parsed = parseStamp(stamp);
    return parsed ? parsed.physical - this.now() : 0;
  }

  /** Moves the clock past a stamp seen elsewhere (a peer's record, the last stamp on disk). */
  observe(stamp: Stamp): void {
    const parsed = parseStamp(stamp);
    if (!parsed) return;
    if (
      parsed.physical > this.physical ||
      (parsed.physical === this.physical && parsed.counter > this.counter)
    ) {
      this.physical = parsed.physical;
      this.counter = parsed.counter;
    }
  }
}

export function formatStamp(physical: number, counter: number, replicaId: string): Stamp {
  return `${String(physical).padStart(13, "0")}.${String(counter).padStart(6, "0")}.${replicaId}`;
}

export function parseStamp(
  stamp: Stamp,
): { physical: number; counter: number; replicaId: string } | undefined {
  const match = /^(\d{13})\.(\d{6})\.(.+)$/.exec(stamp);
  if (!match) return undefined;
  return { physical: Number(match[1]), counter: Number(match[2]), replicaId: match[3] ?? "" };
}
