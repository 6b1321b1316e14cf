// One direction of one proxied connection: reads chunks from the source socket, queues
// them for the link direction to pace, holds each sent piece until its arrival time, and
// writes it to the destination in order. It owns this connection's backpressure (pause
// the source while too much is queued, wait for 'drain' on the destination) and the
// forwarding of a half-close once everything queued has been delivered.
import type { Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { Fifo } from "./fifo.ts";
import type { LinkDirection, LinkSender } from "./link-direction.ts";

export interface PacedPipeOptions {
  source: Socket;
  destination: Socket;
  direction: LinkDirection;
  /**
   * Pause reading from the source while more than this many bytes are undelivered, plus
   * the link's bandwidth-delay product (bytes legitimately on the wire).
   */
  maxQueuedBytes: number;
  /** Called with the size of every piece handed to the destination socket. */
  onDelivered(bytes: number): void;
}

interface InFlight {
  piece: Buffer;
  arriveAt: number;
}

export class PacedPipe implements LinkSender {
  pendingBytes = 0;
  private inFlightBytes = 0;
  private readonly pending = new Fifo<Buffer>();
  private readonly inFlight = new Fifo<InFlight>();
  /** Arrival time of the last piece sent; later pieces never overtake it. */
  private lastArrival = 0;
  private timer: NodeJS.Timeout | undefined;
  private awaitingDrain = false;
  private sourcePaused = false;
  private sourceEnded = false;
  private endSent = false;
  private stopped = false;
  private readonly source: Socket;
  private readonly destination: Socket;
  private readonly direction: LinkDirection;
  private readonly maxQueuedBytes: number;
  private readonly onDelivered: (bytes: number) => void;

  constructor(options: PacedPipeOptions) {
    this.source = options.source;
    this.destination = options.destination;
    this.direction = options.direction;
    this.maxQueuedBytes = options.maxQueuedBytes;
    this.onDelivered = options.onDelivered;
    this.source.on("data", this.onData);
    this.source.on("end", this.onEnd);
  }

  /** Bytes read from the source and not yet handed to the destination. */
  get queuedBytes(): number {
    return this.pendingBytes + this.inFlightBytes;
  }

  /** Stops forwarding for good and drops everything queued (the connection is gone). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.direction.forget(this);
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.source.off("data", this.onData);
    this.source.off("end", this.onEnd);
    this.destination.off("drain", this.onDrain);
    this.pending.clear();
    this.inFlight.clear();
    this.pendingBytes = 0;
    this.inFlightBytes = 0;
  }

  nextPieceBytes(maxBytes: number): number {
    const head = this.pending.peek();
    return head === undefined ? 0 : Math.min(maxBytes, head.length);
  }

  takePiece(maxBytes: number): Buffer {
    const head = this.pending.peek();
    if (head === undefined) throw new Error("PacedPipe.takePiece with nothing pending");
    let piece = head;
    if (head.length > maxBytes) {
      piece = head.subarray(0, maxBytes);
      this.pending.replaceHead(head.subarray(maxBytes));
    } else {
      this.pending.shift();
    }
    this.pendingBytes -= piece.length;
    return piece;
  }

  dispatch(piece: Buffer, arriveAt: number): void {
    if (this.stopped) return;
    // A lowered RTT must not let a new piece overtake older ones still on the wire.
    this.lastArrival = Math.max(arriveAt, this.lastArrival);
    this.inFlight.push({ piece, arriveAt: this.lastArrival });
    this.inFlightBytes += piece.length;
    this.flush();
  }

  /** The queue limit: the configured backlog plus what the link keeps on the wire. */
  private pauseAbove(): number {
    return this.maxQueuedBytes + this.direction.bandwidthDelayBytes;
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.stopped || chunk.length === 0) return;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    this.direction.wake(this);
    // Checked after wake: an unshaped link may already have delivered the chunk.
    if (!this.sourcePaused && this.queuedBytes > this.pauseAbove()) {
      this.sourcePaused = true;
      this.source.pause();
    }
  };

  private readonly onEnd = (): void => {
    this.sourceEnded = true;
    this.maybeEnd();
  };

  private readonly onDrain = (): void => {
    this.awaitingDrain = false;
    this.flush();
  };

  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.flush();
  };

  /** Writes every piece that has arrived, in order, until the destination pushes back. */
  private flush(): void {
    if (this.stopped || this.awaitingDrain) return;
    const now = performance.now();
    for (;;) {
      const head = this.inFlight.peek();
      if (head === undefined) break;
      if (head.arriveAt > now) {
        // Pieces only ever join behind the head, so an armed timer is never too late.
        if (this.timer === undefined) {
          this.timer = setTimeout(this.onTimer, Math.max(1, Math.ceil(head.arriveAt - now)));
          this.timer.unref();
        }
        break;
      }
      this.inFlight.shift();
      this.inFlightBytes -= head.piece.length;
      this.onDelivered(head.piece.length);
      if (!this.destination.write(head.piece)) {
        this.awaitingDrain = true;
        this.destination.once("drain", this.onDrain);
        break;
      }
    }
    if (this.sourcePaused && this.queuedBytes <= this.pauseAbove() - this.maxQueuedBytes / 2) {
      this.sourcePaused = false;
      this.source.resume();
    }
    this.maybeEnd();
  }

  /** Forwards the source's half-close once everything it sent has been delivered. */
  private maybeEnd(): void {
    if (this.stopped || this.endSent || !this.sourceEnded) return;
    if (this.pendingBytes > 0 || this.inFlight.length > 0) return;
    this.endSent = true;
    // end() after a write that returned false is fine: the stream flushes its buffer first.
    this.destination.end();
  }
}
