// Which receiver URLs a webhook may call: http or https only, and after DNS resolution
// never a link-local or cloud-metadata address (169.254.0.0/16, fe80::/10, fd00:ec2::254),
// so that a webhook cannot be made to fetch cloud credentials; loopback and private ranges
// too when `webhooks.denyPrivateNetworks` is set. The check resolves the name and hands
// back the address it approved: the sender connects to that address, so a name cannot be
// re-pointed between the check and the connection.
import { lookup } from "node:dns/promises";
import { BlockList, isIP } from "node:net";

export class UrlRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UrlRefusedError";
  }
}

export interface ApprovedTarget {
  url: URL;
  /** The addresses the host resolved to, every one checked: the only ones to connect to. */
  addresses: { address: string; family: 4 | 6 }[];
}

const alwaysDenied = new BlockList();
alwaysDenied.addSubnet("169.254.0.0", 16, "ipv4");
alwaysDenied.addSubnet("fe80::", 10, "ipv6");
alwaysDenied.addAddress("fd00:ec2::254", "ipv6");

const privateRanges = new BlockList();
for (const [net, bits] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["172.16.0.0", 12],
  ["192.168.0.0", 16],
] as const) {
  privateRanges.addSubnet(net, bits, "ipv4");
}
privateRanges.addAddress("::", "ipv6");
privateRanges.addAddress("::1", "ipv6");
privateRanges.addSubnet("fc00::", 7, "ipv6");

/** Why an address is refused, or undefined when it may be called. */
export function refusal(address: string, denyPrivate: boolean): string | undefined {
  let family = isIP(address);
  let checked = address;
  // An IPv4-mapped IPv6 address reaches the IPv4 host: judge it as that.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped?.[1]) {
    checked = mapped[1];
    family = 4;
  }
  if (family === 0) return `${address} is not an IP address`;
  const type = family === 4 ? "ipv4" : "ipv6";
  if (alwaysDenied.check(checked, type)) {
    return `${address} is a link-local or cloud metadata address`;
  }
  if (denyPrivate && privateRanges.check(checked, type)) {
    return `${address} is a loopback or private address (webhooks.denyPrivateNetworks)`;
  }
  return undefined;
}

/** Parses and checks the URL's form only (scheme, host); throws UrlRefusedError. */
export function parseReceiverUrl(uri: string): URL {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new UrlRefusedError(`${uri.slice(0, 100)} is not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UrlRefusedError(`${url.protocol} URLs are refused: http or https only`);
  }
  if (url.username || url.password) {
    throw new UrlRefusedError("credentials in the URL are refused: use --headers");
  }
  return url;
}

/**
 * Resolves the URL's host and checks every address it resolves to (one bad address
 * refuses the URL: the resolver could hand out either). Throws UrlRefusedError.
 */
export async function approveUrl(uri: string, denyPrivate: boolean): Promise<ApprovedTarget> {
  const url = parseReceiverUrl(uri);
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  let addresses: { address: string; family: number }[];
  if (isIP(host)) {
    addresses = [{ address: host, family: isIP(host) }];
  } else {
    try {
      addresses = await lookup(host, { all: true, verbatim: true });
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      throw new UrlRefusedError(`${host} does not resolve (${String(code ?? error)})`);
    }
  }
  if (addresses.length === 0) throw new UrlRefusedError(`${host} does not resolve`);
  for (const { address } of addresses) {
    const why = refusal(address, denyPrivate);
    if (why) throw new UrlRefusedError(`refused ${host}: ${why}`);
  }
  return {
    url,
    addresses: addresses.map(({ address, family }) => ({ address, family: family === 6 ? 6 : 4 })),
  };
}
