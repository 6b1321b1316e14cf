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
//
// Several nodes of one replica (worker processes over one SQLite file, or machines over
// one PostgreSQL) write with the same replica id, so their stamps must still never meet:
// node `slot` of `slots` issues only counters equal to its slot modulo `slots`, and two
// nodes cannot issue the same (time, counter) pair.
import type { Stamp } from "../metadata/metadata-store.ts";

/** The largest counter the format holds. */
export const maxCounter = 999_999;

/** Which of a replica's nodes issues the stamps: counters of its residue only. */
export interface ClockSlot {
  slot: number;
  slots: number;
}

export class HybridClock {
  private physical = 0;
  private counter = 0;
  private readonly slot: number;
  private readonly slots: number;
  /** The largest counter of this node's residue that the format holds. */
  private readonly lastCounter: number;

  constructor(
    readonly replicaId: string,
    private readonly now: () => number = Date.now,
    node: ClockSlot = { slot: 0, slots: 1 },
  ) {
    if (!Number.isInteger(node.slots) || node.slots < 1 || node.slots > 1000)
      throw new RangeError(`clock slots must be 1-1000, not ${node.slots}`);
    if (!Number.isInteger(node.slot) || node.slot < 0 || node.slot >= node.slots)
      throw new RangeError(`clock slot must be 0-${node.slots - 1}, not ${node.slot}`);
    this.slot = node.slot;
    this.slots = node.slots;
    this.lastCounter = maxCounter - ((maxCounter - node.slot) % node.slots);
  }

  /** A new stamp, greater than every stamp issued or observed before. */
  next(): Stamp {
    const wall = this.now();
    if (wall > this.physical) {
      this.physical = wall;
      this.counter = this.slot;
    } else {
      // The next counter of this node's residue after the current one.
      const step = (((this.slot - this.counter - 1) % this.slots) + this.slots) % this.slots;
      const next = this.counter + 1 + step;
      if (next > this.lastCounter) {
        this.physical += 1;
        this.counter = this.slot;
      } else {
        this.counter = next;
      }
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
