// One connection through a WAN link: the accepted client socket, the socket to the
// target, and the two paced pipes between them. It owns the connection's lifecycle:
// an error or an unclean close on either side resets the other, a cut resets both, and
// every socket has an 'error' listener for its whole life so nothing is ever unhandled.
import type { Socket } from "node:net";
import type { LinkDirection } from "./link-direction.ts";
import { PacedPipe } from "./paced-pipe.ts";

export interface WanConnectionOptions {
  client: Socket;
  target: Socket;
  forward: LinkDirection;
  backward: LinkDirection;
  maxQueuedBytes: number;
  onForward(bytes: number): void;
  onBackward(bytes: number): void;
  /** Called once, when both sockets are done with (closed or destroyed). */
  onGone(connection: WanConnection): void;
}

/** Tears a socket down like a broken network would: with a reset where there is a connection. */
export function resetSocket(socket: Socket): void {
  if (socket.destroyed) return;
  // resetAndDestroy() on a socket still connecting waits for the connection just to reset it,
  // and on a socket whose end() is still being sent libuv refuses the reset (EINVAL) while
  // Node marks the socket closing anyway: it then never closes and the process spins at
  // exit. A plain destroy() is the honest teardown in both cases.
  if (socket.connecting || socket.writableEnded) socket.destroy();
  else socket.resetAndDestroy();
}

export class WanConnection {
  private readonly client: Socket;
  private readonly target: Socket;
  private readonly forward: PacedPipe;
  private readonly backward: PacedPipe;
  private readonly onGone: (connection: WanConnection) => void;
  private gone = false;

  constructor(options: WanConnectionOptions) {
    this.client = options.client;
    this.target = options.target;
    this.onGone = options.onGone;
    this.forward = new PacedPipe({
      source: this.client,
      destination: this.target,
      direction: options.forward,
      maxQueuedBytes: options.maxQueuedBytes,
      onDelivered: options.onForward,
    });
    this.backward = new PacedPipe({
      source: this.target,
      destination: this.client,
      direction: options.backward,
      maxQueuedBytes: options.maxQueuedBytes,
      onDelivered: options.onBackward,
    });
    for (const socket of [this.client, this.target]) {
      // Small requests must not wait for Nagle (a 40 ms stall with delayed ACKs on loopback).
      socket.setNoDelay(true);
      socket.on("error", this.onError);
      socket.on("close", () => this.onSocketClose(socket));
    }
  }

  /** Bytes this connection has read but not yet delivered, both directions. */
  get queuedBytes(): number {
    return this.forward.queuedBytes + this.backward.queuedBytes;
  }

  /** Resets both sockets and drops whatever is queued. */
  destroy(): void {
    if (this.gone) return;
    this.finish();
    resetSocket(this.client);
    resetSocket(this.target);
  }

  private readonly onError = (): void => {
    // A reset or failure on one side (including a refused connect to the target) is
    // passed on as a reset of the other side.
    this.destroy();
  };

  private onSocketClose(socket: Socket): void {
    if (this.gone) return;
    // Clean means both halves finished: its end was read and our end was flushed. The
    // other side then finishes on its own, once the data still queued for it is delivered.
    const clean = socket.readableEnded && socket.writableFinished;
    if (!clean) {
      this.destroy();
      return;
    }
    const other = socket === this.client ? this.target : this.client;
    if (other.destroyed) this.finish();
  }

  private finish(): void {
    this.gone = true;
    this.forward.stop();
    this.backward.stop();
    this.onGone(this);
  }
}
