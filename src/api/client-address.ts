// Which client a request counts as, for per-client limits (uploads, failed logins). The
// socket's peer, unless that peer is a trusted proxy (the global endpoint, a load
// balancer): then X-Forwarded-For is read from its right end, where each proxy appended
// the address it saw, back to the first hop that is not a trusted proxy. Everything left of
// that hop is whatever the client chose to send, so it is never believed.

import type { IncomingMessage } from "node:http";
import { BlockList, isIP } from "node:net";

export class ClientAddresses {
  private readonly trusted = new BlockList();
  private readonly any: boolean;

  /** `trustedProxies`: CIDRs (`10.0.0.0/8`, `fd00::/8`) or single addresses, already checked. */
  constructor(trustedProxies: readonly string[]) {
    for (const entry of trustedProxies) {
      const [address = "", prefix] = entry.split("/");
      const family = isIP(address) === 6 ? "ipv6" : "ipv4";
      const bits = prefix === undefined ? (family === "ipv6" ? 128 : 32) : Number(prefix);
      this.trusted.addSubnet(address, bits, family);
    }
    this.any = trustedProxies.length > 0;
  }

  /** The address the request counts as coming from. */
  of(req: IncomingMessage): string {
    const peer = plain(req.socket.remoteAddress ?? "");
    if (!this.any || !this.isTrusted(peer)) return peer || "unknown";
    const header = req.headers["x-forwarded-for"];
    const hops = (Array.isArray(header) ? header.join(",") : (header ?? "")).split(",");
    let client = peer;
    for (let index = hops.length - 1; index >= 0; index -= 1) {
      const hop = plain((hops[index] ?? "").trim());
      if (isIP(hop) === 0) break;
      client = hop;
      if (!this.isTrusted(hop)) break;
    }
    return client;
  }

  private isTrusted(address: string): boolean {
    const family = isIP(address);
    if (family === 0) return false;
    return this.trusted.check(address, family === 6 ? "ipv6" : "ipv4");
  }
}

/** `::ffff:10.0.0.1` (an IPv4 client on a dual-stack socket) is `10.0.0.1`. */
function plain(address: string): string {
  return address.startsWith("::ffff:") && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}
