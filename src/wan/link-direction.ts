// One direction of a WAN link: the shared bottleneck that every connection of the link
// sends through. It owns the bandwidth (pacing departures so the direction never carries
// more than its rate), the one-way latency stamped on each piece, and the round-robin
// order in which connections with queued data take turns on the wire.
import { performance } from "node:perf_hooks";

/** A connection's queue of bytes waiting to cross one direction of the link. */
export interface LinkSender {
  /** Bytes read from the source but not yet sent over the link. */
  readonly pendingBytes: number;
  /** Size of the next piece `takePiece(maxBytes)` would return (0 when nothing waits). */
  nextPieceBytes(maxBytes: number): number;
  /** Removes and returns the next piece, at most maxBytes long. */
  takePiece(maxBytes: number): Buffer;
  /** Hands over a piece that has crossed the link; it reaches the far side at `arriveAt`. */
  dispatch(piece: Buffer, arriveAt: number): void;
}

/**
 * How far the pacer may catch up after its timer fired late. Timers on a loaded machine
 * run late; catching up keeps the average rate honest, and the cap keeps an event-loop
 * stall from turning into a burst far above the configured rate.
 */
const MAX_CATCH_UP_MS = 50;
const MAX_PIECE_BYTES = 16 * 1024;
const MIN_PIECE_BYTES = 512;

/** Pieces of ~5 ms of transmission keep pacing smooth at every rate. */
function pieceBytesFor(bytesPerSecond: number): number {
  const fiveMs = Math.floor(bytesPerSecond / 200);
  return Math.min(MAX_PIECE_BYTES, Math.max(MIN_PIECE_BYTES, fiveMs));
}

export class LinkDirection {
  private readonly ready = new Set<LinkSender>();
  /** When the wire finished the last piece it carried (performance.now() milliseconds). */
  private busyUntil = 0;
  private timer: NodeJS.Timeout | undefined;
  private pumping = false;

  constructor(
    private bytesPerSecond: number | undefined,
    private latencyMs: number,
  ) {}

  setBandwidth(bytesPerSecond: number | undefined): void {
    this.bytesPerSecond = bytesPerSecond;
    // The waiting piece's departure was computed with the old rate; recompute it now.
    this.clearTimer();
    if (this.ready.size > 0 && !this.pumping) this.pump();
  }

  /** New one-way latency; pieces already on the wire keep the arrival time they had. */
  setLatency(ms: number): void {
    this.latencyMs = ms;
  }

  /**
   * Bytes a full-speed connection has on the wire at any moment (rate x one-way latency).
   * Pipes add this to their queue limit, as TCP sizes its window to the bandwidth-delay
   * product; otherwise latency alone would cap a connection far below the link's rate.
   */
  get bandwidthDelayBytes(): number {
    if (this.bytesPerSecond === undefined) return 0;
    return (this.bytesPerSecond * this.latencyMs) / 1000;
  }

  /** A sender has new pending bytes. */
  wake(sender: LinkSender): void {
    if (this.ready.has(sender)) return;
    // An idle wire has no backlog to catch up on: the next piece starts from now.
    if (this.ready.size === 0) this.busyUntil = Math.max(this.busyUntil, performance.now());
    this.ready.add(sender);
    if (this.timer === undefined && !this.pumping) this.pump();
  }

  /** A sender is gone (its connection closed); drop it from the rotation. */
  forget(sender: LinkSender): void {
    this.ready.delete(sender);
    if (this.ready.size === 0) this.clearTimer();
  }

  close(): void {
    this.ready.clear();
    this.clearTimer();
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.pump();
  };

  private pump(): void {
    this.pumping = true;
    try {
      const rate = this.bytesPerSecond;
      if (rate === undefined) this.sendAll();
      else this.sendPaced(rate);
    } finally {
      this.pumping = false;
    }
  }

  private sendAll(): void {
    const arriveAt = performance.now() + this.latencyMs;
    for (const sender of this.ready) {
      this.ready.delete(sender);
      while (sender.pendingBytes > 0) sender.dispatch(sender.takePiece(Infinity), arriveAt);
    }
  }

  /**
   * Sends pieces in turn while the wire has capacity: a piece leaves when its last byte
   * has been "transmitted" (previous finish + size / rate), so by any time t the
   * direction has carried at most rate * elapsed bytes.
   */
  private sendPaced(rate: number): void {
    const now = performance.now();
    this.busyUntil = Math.max(this.busyUntil, now - MAX_CATCH_UP_MS);
    const maxPiece = pieceBytesFor(rate);
    for (;;) {
      const first = this.ready.values().next();
      if (first.done === true) return;
      const sender = first.value;
      const size = sender.nextPieceBytes(maxPiece);
      if (size === 0) {
        this.ready.delete(sender);
        continue;
      }
      const finish = this.busyUntil + (size * 1000) / rate;
      if (finish > now) {
        // Ceil so the timer never fires before the piece is due (it would only spin).
        this.timer = setTimeout(this.onTimer, Math.max(1, Math.ceil(finish - now)));
        this.timer.unref();
        return;
      }
      this.busyUntil = finish;
      // Round robin: the sender goes to the back of the line after each piece.
      this.ready.delete(sender);
      sender.dispatch(sender.takePiece(size), finish + this.latencyMs);
      if (sender.pendingBytes > 0) this.ready.add(sender);
    }
  }
}
