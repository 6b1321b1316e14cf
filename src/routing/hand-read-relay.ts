// The global endpoint's relay for reads (GET and HEAD without a body): the request head
// is written to a pooled keep-alive connection to the replica, the answer's head parsed,
// and its body passed to the client chunk by chunk as it arrives, with backpressure.
// Node's HTTP client would copy each body chunk out of its parser and collect it later;
// for blob pulls that copy was most of the endpoint's work.
import type { EventEmitter } from "node:events";
import type { ServerResponse } from "node:http";
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import {
  type BodyFramer,
  bodyFramer,
  parseResponseHead,
  type ResponseHead,
} from "./response-framing.ts";

/** Idle connections kept per replica. */
const maxIdlePerOrigin = 64;
/** An idle connection unused this long is closed (replicas keep theirs for 65 s). */
const idleTimeoutMs = 30_000;

export interface RelayRequest {
  /** The replica's base URL, e.g. http://127.0.0.1:5001. */
  origin: string;
  method: "GET" | "HEAD";
  /** Path and query. */
  path: string;
  /** Request headers to send (hop-by-hop ones already removed). */
  headers: Record<string, string | string[]>;
  res: ServerResponse;
  /** Whether this is the last replica tried: then even a 5xx goes to the client. */
  final: boolean;
  /** The headers to answer the client with, made from the replica's. */
  answerHeaders(head: ResponseHead): Record<string, string | string[]>;
}

/** done: the client got an answer (or its connection was cut); retry: try another replica. */
export type RelayOutcome = "done" | "retry";

export class HandReadRelay {
  /**
   * A replica that sends nothing for this long (before its answer or within its body)
   * while the client is ready for more is given up on: a read not begun goes to the next
   * replica; one begun is cut, so the client sees a short body rather than a hang.
   */
  private readonly stallMs: number;
  /** Certificates to trust for HTTPS replicas instead of the system's (and NODE_EXTRA_CA_CERTS). */
  private readonly ca: Buffer | undefined;
  private readonly idle = new Map<string, Socket[]>();
  /** Removes the listeners a connection has while it waits in the pool. */
  private readonly releaseHooks = new WeakMap<Socket, () => void>();

  constructor(options: { stallMs?: number; ca?: Buffer } = {}) {
    this.stallMs = options.stallMs ?? 30_000;
    this.ca = options.ca;
  }

  /** Relays one read; rejects only when the replica failed and nothing was sent yet. */
  async relay(request: RelayRequest): Promise<RelayOutcome> {
    const reused = this.takeIdle(request.origin);
    if (reused) {
      try {
        return await this.exchange(reused, request, true);
      } catch (error) {
        // A kept connection the replica closed meanwhile fails before any answer: a read
        // is safe to send again, once, on a new connection.
        if (!(error instanceof StaleConnectionError)) throw error;
      }
    }
    return this.exchange(this.connect(request.origin), request, false);
  }

  close(): void {
    for (const sockets of this.idle.values()) for (const socket of sockets) socket.destroy();
    this.idle.clear();
  }

  private connect(origin: string): Socket {
    const url = new URL(origin);
    const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
    const host = url.hostname.replace(/^\[|\]$/g, "");
    const socket =
      url.protocol === "https:"
        ? tlsConnect({
            host,
            port,
            servername: isAddress(host) ? undefined : host,
            ...(this.ca ? { ca: this.ca } : {}),
          })
        : netConnect({ host, port });
    socket.setNoDelay(true);
    return socket;
  }

  private takeIdle(origin: string): Socket | undefined {
    const sockets = this.idle.get(origin);
    while (sockets && sockets.length > 0) {
      const socket = sockets.pop() as Socket;
      socket.removeAllListeners("timeout");
      socket.setTimeout(0);
      if (!socket.destroyed && socket.readable && socket.writable) return socket;
    }
    return undefined;
  }

  private keep(origin: string, socket: Socket): void {
    const sockets = this.idle.get(origin) ?? [];
    if (sockets.length >= maxIdlePerOrigin || socket.destroyed) {
      socket.destroy();
      return;
    }
    sockets.push(socket);
    this.idle.set(origin, sockets);
    const forget = () => {
      const at = sockets.indexOf(socket);
      if (at !== -1) sockets.splice(at, 1);
      socket.destroy();
    };
    socket.setTimeout(idleTimeoutMs, forget);
    // An idle connection the replica closes is dropped; bytes it sends unasked are an error.
    const onIdleEvent = () => {
      if (sockets.includes(socket)) forget();
    };
    this.releaseHooks.set(
      socket,
      attach(socket, {
        close: onIdleEvent,
        data: onIdleEvent,
        error: onIdleEvent,
        end: onIdleEvent,
      }),
    );
  }

  private exchange(socket: Socket, request: RelayRequest, reused: boolean): Promise<RelayOutcome> {
    this.releaseHooks.get(socket)?.();
    this.releaseHooks.delete(socket);
    const readBefore = socket.bytesRead;
    const { res } = request;
    return new Promise<RelayOutcome>((resolve, reject) => {
      let head: ResponseHead | undefined;
      let pending: Buffer | undefined;
      let framer: BodyFramer | undefined;
      let settled = false;
      let detach = () => {};
      const finish = (outcome: RelayOutcome | Error, keepSocket = false) => {
        if (settled) return;
        settled = true;
        detach();
        socket.setTimeout(0);
        if (keepSocket) {
          socket.resume();
          this.keep(request.origin, socket);
        } else socket.destroy();
        if (outcome instanceof Error) reject(outcome);
        else resolve(outcome);
      };
      const fail = (error: Error) => {
        if (!head) {
          if (reused && socket.bytesRead === readBefore) {
            finish(new StaleConnectionError(error));
            return;
          }
          if (!request.final) {
            finish("retry");
            return;
          }
          finish(error);
          return;
        }
        // The answer had begun: the client's connection is cut so it sees a short body.
        res.destroy(error);
        finish("done");
      };
      const onBody = (bytes: Buffer) => {
        const framed = (framer as BodyFramer).feed(bytes);
        let flowing = true;
        for (const part of framed.data) flowing = res.write(part) && flowing;
        if (framed.done) {
          res.end();
          finish("done", (framer as BodyFramer).reusable);
        } else if (!flowing) {
          // A slow client is no stalled replica: the clock stops while the client catches up.
          socket.setTimeout(0);
          socket.pause();
        }
      };
      const onData = (chunk: Buffer) => {
        try {
          if (head) {
            onBody(chunk);
            return;
          }
          pending = pending ? Buffer.concat([pending, chunk]) : chunk;
          const parsed = parseResponseHead(pending);
          if (!parsed) return;
          head = parsed;
          if (head.status >= 500 && !request.final) {
            finish("retry");
            return;
          }
          framer = bodyFramer(request.method, head);
          res.writeHead(head.status, request.answerHeaders(head));
          onBody(pending.subarray(head.length));
          pending = undefined;
        } catch (error) {
          fail(error as Error);
        }
      };
      const onEnd = () => {
        if (settled) return;
        if (head && framer?.endOfInput()) {
          res.end();
          finish("done");
          return;
        }
        fail(new Error("the replica closed the connection before the answer ended"));
      };
      const onError = (error: Error) => fail(error);
      const onDrain = () => {
        socket.setTimeout(this.stallMs);
        socket.resume();
      };
      const onStall = () => fail(new Error(`the replica sent nothing for ${this.stallMs} ms`));
      const onClientClose = () => {
        if (!res.writableFinished) finish("done");
      };
      const fromSocket = attach(socket, {
        data: onData,
        end: onEnd,
        close: onEnd,
        error: onError,
        timeout: onStall,
      });
      const fromClient = attach(res, { drain: onDrain, close: onClientClose });
      detach = () => {
        fromSocket();
        fromClient();
      };
      socket.setTimeout(this.stallMs);
      socket.write(requestHead(request));
    });
  }
}

/** A kept connection failed before answering (the replica closed it while idle). */
class StaleConnectionError extends Error {
  constructor(cause: Error) {
    super(`kept connection failed: ${cause.message}`, { cause });
    this.name = "StaleConnectionError";
  }
}

function requestHead(request: RelayRequest): string {
  let text = `${request.method} ${request.path} HTTP/1.1\r\n`;
  let hasHost = false;
  for (const [name, value] of Object.entries(request.headers)) {
    if (name === "host") hasHost = true;
    for (const one of Array.isArray(value) ? value : [value]) text += `${name}: ${one}\r\n`;
  }
  if (!hasHost) text += `host: ${new URL(request.origin).host}\r\n`;
  return `${text}connection: keep-alive\r\n\r\n`;
}

/** Adds the listeners; the function returned removes exactly them. */
function attach(
  emitter: EventEmitter,
  listeners: Record<string, (...args: never[]) => void>,
): () => void {
  // Each listener takes what its own event passes; the emitter's signature cannot say so.
  const entries = Object.entries(listeners) as [string, (...args: unknown[]) => void][];
  for (const [event, listener] of entries) emitter.on(event, listener);
  return () => {
    for (const [event, listener] of entries) emitter.off(event, listener);
  };
}

function isAddress(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(":");
}
