// The listen address: splits a validated `host:port` into what net.Server.listen takes,
// and takes it, failing with one clear sentence when the address cannot be had.
import type { Server } from "node:net";

export function parseListenAddress(listen: string): { host: string; port: number } {
  const colon = listen.lastIndexOf(":");
  let host = listen.slice(0, colon);
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  return { host: host === "" ? "0.0.0.0" : host, port: Number(listen.slice(colon + 1)) };
}

/** A server could not take its address: in use, not permitted, not on this machine. */
export class ListenError extends Error {
  constructor(
    readonly address: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot listen on ${address}: ${reason}`, options);
    this.name = "ListenError";
  }
}

const reasons: Record<string, string> = {
  EADDRINUSE: "address already in use",
  EACCES: "permission denied",
  EADDRNOTAVAIL: "address not available on this machine",
};

/** Starts `server` listening on `host:port`. Throws ListenError. */
export function listenOn(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (error: NodeJS.ErrnoException) => {
      const address = `${host.includes(":") ? `[${host}]` : host}:${port}`;
      const reason = reasons[error.code ?? ""] ?? error.message;
      reject(new ListenError(address, reason, { cause: error }));
    };
    server.once("error", fail);
    server.listen(port, host, () => {
      server.off("error", fail);
      resolve();
    });
  });
}
