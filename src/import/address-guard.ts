// A replica fetching whatever an admin names must not become a way to reach the cloud's
// instance metadata service (and the credentials it hands out): link-local and metadata
// addresses are refused for the source, its token realm and every redirect target, after
// DNS resolution. Loopback and private ranges stay allowed (mirrors on the same network are
// the common case). What is left: a name re-pointed between this lookup and fetch's own.
import { lookup } from "node:dns/promises";
import { BlockList, isIP } from "node:net";
import { ImportFailure } from "./import-failure.ts";

const blocked = new BlockList();
blocked.addSubnet("169.254.0.0", 16, "ipv4");
blocked.addSubnet("fe80::", 10, "ipv6");
blocked.addAddress("fd00:ec2::254", "ipv6");

/** Throws ImportFailure when `hostname` is, or resolves to, a refused address. */
export async function refuseMetadataAddresses(hostname: string): Promise<void> {
  const bare = hostname.replace(/^\[|\]$/g, "");
  const addresses = isIP(bare)
    ? [bare]
    : // A name that does not resolve is left to fetch, which says so in its own words.
      (await lookup(bare, { all: true, verbatim: true }).catch(() => [])).map((a) => a.address);
  for (const address of addresses) {
    if (isRefused(address)) {
      throw new ImportFailure(
        `refusing to import from ${hostname}: ${address} is a link-local or cloud metadata address`,
      );
    }
  }
}

export function isRefused(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped) return blocked.check(mapped, "ipv4");
  return blocked.check(address, isIP(address) === 6 ? "ipv6" : "ipv4");
}
