// The WAN emulator: a TCP proxy that sits between two replicas on one machine and adds
// the distance a real WAN would (latency, a bandwidth cap, and a link that can be cut).
// It owns the listening socket, the link-wide settings and counters, and the set of
// open connections; the shaping itself lives in LinkDirection and PacedPipe.
import { connect, createServer, type Server, type Socket } from "node:net";
import { LinkDirection } from "./link-direction.ts";
import { resetSocket, WanConnection } from "./wan-connection.ts";

export interface WanLinkOptions {
  /** Where the proxy forwards to, e.g. { host: "127.0.0.1", port: 5002 }. */
  target: { host: string; port: number };
  /** Listen address; default host 127.0.0.1, port 0 (OS picks). */
  listen?: { host?: string; port?: number };
  /** Round-trip time added, in milliseconds (each direction gets half). Default 0. */
  rttMs?: number;
  /** Bandwidth limit per direction in bytes per second, shared by all connections of the link. Default unlimited. */
  bytesPerSecond?: number;
  /** Optional label for logs/metrics, e.g. "westus->eastus". */
  name?: string;
  /**
   * Per connection and direction, pause reading once this many bytes (plus the link's
   * bandwidth-delay product) are undelivered. Default 1 MiB. Like a TCP window, it caps
   * one connection on an unshaped link with latency at about maxQueuedBytes / (rtt / 2).
   */
  maxQueuedBytes?: number;
}

export interface WanLinkStats {
  /** Connections open right now. */
  connections: number;
  /** Connections forwarded since start (not counting those refused while cut). */
  connectionsTotal: number;
  /** Bytes delivered client -> target. */
  bytesForward: number;
  /** Bytes delivered target -> client. */
  bytesBackward: number;
  /** Bytes read but not yet delivered, over all connections and both directions. */
  queuedBytes: number;
}

const DEFAULT_MAX_QUEUED_BYTES = 1024 * 1024;

function checkRtt(ms: number): number {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`rttMs must be >= 0, got ${ms}`);
  return ms;
}

function checkBandwidth(bytesPerSecond: number | undefined): number | undefined {
  if (bytesPerSecond === undefined) return undefined;
  if (!Number.isFinite(bytesPerSecond) || bytesPerSecond <= 0) {
    throw new RangeError(`bytesPerSecond must be > 0 or undefined, got ${bytesPerSecond}`);
  }
  return bytesPerSecond;
}

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.once("error", onError);
    server.listen({ host, port }, () => {
      server.off("error", onError);
      const address = server.address();
      if (address === null || typeof address === "string") {
        reject(new Error("WAN link is not listening on a TCP port"));
      } else {
        resolve(address.port);
      }
    });
  });
}

export class WanLink {
  readonly url: string;
  readonly port: number;
  readonly name: string;
  private readonly target: { host: string; port: number };
  private readonly maxQueuedBytes: number;
  private readonly forward: LinkDirection;
  private readonly backward: LinkDirection;
  private readonly connections = new Set<WanConnection>();
  private connectionsTotal = 0;
  private bytesForward = 0;
  private bytesBackward = 0;
  private cutNow = false;
  /** While blackholed: the connections accepted and held without an answer. */
  private held: Set<Socket> | undefined;
  private closing: Promise<void> | undefined;

  static async start(options: WanLinkOptions): Promise<WanLink> {
    const host = options.listen?.host ?? "127.0.0.1";
    const rtt = checkRtt(options.rttMs ?? 0);
    const bandwidth = checkBandwidth(options.bytesPerSecond);
    const maxQueuedBytes = options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES;
    if (!Number.isFinite(maxQueuedBytes) || maxQueuedBytes <= 0) {
      throw new RangeError(`maxQueuedBytes must be > 0, got ${maxQueuedBytes}`);
    }
    // Half-open on: a client that ends its side still gets the reply, as over real TCP.
    const server = createServer({ allowHalfOpen: true });
    const port = await listen(server, host, options.listen?.port ?? 0);
    // No await between listen and here, so no connection can arrive without a handler.
    return new WanLink(server, {
      url: `http://${host.includes(":") ? `[${host}]` : host}:${port}`,
      port,
      name: options.name ?? `${host}:${port}->${options.target.host}:${options.target.port}`,
      target: { host: options.target.host, port: options.target.port },
      maxQueuedBytes,
      rtt,
      bandwidth,
    });
  }

  private constructor(
    private readonly server: Server,
    settings: {
      url: string;
      port: number;
      name: string;
      target: { host: string; port: number };
      maxQueuedBytes: number;
      rtt: number;
      bandwidth: number | undefined;
    },
  ) {
    this.url = settings.url;
    this.port = settings.port;
    this.name = settings.name;
    this.target = settings.target;
    this.maxQueuedBytes = settings.maxQueuedBytes;
    this.forward = new LinkDirection(settings.bandwidth, settings.rtt / 2);
    this.backward = new LinkDirection(settings.bandwidth, settings.rtt / 2);
    // Accept failures (EMFILE and the like) must not crash the process; the client sees
    // its connection fail, which is all a WAN emulator owes it.
    server.on("error", () => {});
    server.on("connection", (socket) => this.accept(socket));
  }

  get isCut(): boolean {
    return this.cutNow;
  }

  setRtt(ms: number): void {
    const oneWay = checkRtt(ms) / 2;
    this.forward.setLatency(oneWay);
    this.backward.setLatency(oneWay);
  }

  setBandwidth(bytesPerSecond: number | undefined): void {
    const rate = checkBandwidth(bytesPerSecond);
    this.forward.setBandwidth(rate);
    this.backward.setBandwidth(rate);
  }

  /** Resets every open connection and every new one until heal(). */
  cut(): void {
    this.cutNow = true;
    this.destroyAll();
  }

  /**
   * Like cut(), but new connections are accepted and then never answered (no byte
   * forwarded, no reset), as with a peer whose packets vanish or a hung host: a client
   * learns of it only from its own timeout. Until heal().
   */
  blackhole(): void {
    this.held ??= new Set();
    this.destroyAll();
  }

  heal(): void {
    this.cutNow = false;
    this.releaseHeld();
  }

  stats(): WanLinkStats {
    let queuedBytes = 0;
    for (const connection of this.connections) queuedBytes += connection.queuedBytes;
    return {
      connections: this.connections.size,
      connectionsTotal: this.connectionsTotal,
      bytesForward: this.bytesForward,
      bytesBackward: this.bytesBackward,
      queuedBytes,
    };
  }

  /** Stops listening and resets every connection. Safe to call more than once. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      // Close the listener first so nothing new is accepted while we tear down.
      this.server.close(() => resolve());
      this.releaseHeld();
      this.destroyAll();
      this.forward.close();
      this.backward.close();
    });
    return this.closing;
  }

  toString(): string {
    return `WanLink(${this.name})`;
  }

  private releaseHeld(): void {
    const held = this.held;
    this.held = undefined;
    for (const socket of held ?? []) resetSocket(socket);
  }

  private destroyAll(): void {
    for (const connection of [...this.connections]) connection.destroy();
  }

  private accept(client: Socket): void {
    client.on("error", () => {});
    if (this.cutNow || this.closing !== undefined) {
      resetSocket(client);
      return;
    }
    const held = this.held;
    if (held) {
      held.add(client);
      client.on("close", () => held.delete(client));
      client.resume();
      return;
    }
    this.connectionsTotal++;
    const target = connect({
      host: this.target.host,
      port: this.target.port,
      allowHalfOpen: true,
    });
    const connection = new WanConnection({
      client,
      target,
      forward: this.forward,
      backward: this.backward,
      maxQueuedBytes: this.maxQueuedBytes,
      onForward: (bytes) => {
        this.bytesForward += bytes;
      },
      onBackward: (bytes) => {
        this.bytesBackward += bytes;
      },
      onGone: (gone) => {
        this.connections.delete(gone);
      },
    });
    this.connections.add(connection);
  }
}
