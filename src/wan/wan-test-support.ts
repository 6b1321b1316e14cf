// Test helpers for the WAN link tests: small loopback servers, a client that collects a
// whole exchange, and waits with deadlines (never fixed sleeps).
import { createHash } from "node:crypto";
import { createServer as createHttpServer, get, type RequestListener } from "node:http";
import { type AddressInfo, connect, createServer, type Server, type Socket } from "node:net";
import { performance } from "node:perf_hooks";

export function sha256(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Rejects with a clear message if `promise` has not settled within `ms`. */
export async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls a condition (every few ms) until it holds, or fails after `ms`. */
export async function waitUntil(condition: () => boolean, ms: number, what: string): Promise<void> {
  const start = performance.now();
  while (!condition()) {
    if (performance.now() - start > ms) throw new Error(`timed out after ${ms} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export interface TestServer {
  port: number;
  close(): Promise<void>;
}

/** A TCP server on 127.0.0.1:0 that tracks its sockets so close() can end them all. */
export async function startServer(onSocket: (socket: Socket) => void): Promise<TestServer> {
  const sockets = new Set<Socket>();
  const server: Server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
    onSocket(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  return {
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Echoes everything back and ends when the client ends. */
export function startEchoServer(): Promise<TestServer> {
  return startServer((socket) => socket.pipe(socket));
}

export interface Exchange {
  received: Buffer;
  elapsedMs: number;
}

/**
 * Connects to port, writes `payload` (then ends), and collects everything until the
 * peer ends. Elapsed time runs from just before connecting to the peer's end.
 */
export function exchange(port: number, payload: Buffer): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const chunks: Buffer[] = [];
    const socket = connect({ host: "127.0.0.1", port, allowHalfOpen: true });
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", reject);
    socket.on("end", () => {
      const elapsedMs = performance.now() - start;
      socket.end();
      resolve({ received: Buffer.concat(chunks), elapsedMs });
    });
    socket.end(payload);
  });
}

/** Resolves with the first chunk the socket receives after `message` is written. */
export function roundTrip(socket: Socket, message: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const onError = (error: Error): void => reject(error);
    socket.once("error", onError);
    socket.once("data", () => {
      socket.off("error", onError);
      resolve(performance.now() - start);
    });
    socket.write(message);
  });
}

/** Opens a client socket and resolves once connected. */
export function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("error", reject);
    socket.once("connect", () => {
      socket.off("error", reject);
      resolve(socket);
    });
  });
}

/** Resolves when the socket has closed (for any reason), swallowing its errors. */
export function closed(socket: Socket): Promise<void> {
  socket.on("error", () => {});
  if (socket.closed) return Promise.resolve();
  return new Promise((resolve) => socket.once("close", () => resolve()));
}

/** An HTTP server on 127.0.0.1:0; close() also drops idle keep-alive connections. */
export async function startHttpServer(handler: RequestListener): Promise<TestServer> {
  const server = createHttpServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** GETs a URL on a fresh connection (no agent, so nothing lingers) and returns the body. */
export function httpGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = get(url, { agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        text += chunk;
      });
      res.on("end", () => resolve(text));
      res.on("error", reject);
    });
    req.on("error", reject);
  });
}
