// Offline GeoIP: the coordinates of a public address from the GeoLite data bundled with
// the geoip-lite package (no network access at run time). The data takes about a second
// and 100 MiB to load. An endpoint that listens beyond loopback loads it at start; one on
// loopback (npm start) loads it only when a public address first asks, since loopback and
// private addresses have no location, and until then such clients get the default region.
import { BlockList, isIPv6 } from "node:net";
import type { Coordinates } from "./client-location.ts";

type Lookup = (address: string) => Coordinates | undefined;

const unlocatable = new BlockList();
unlocatable.addSubnet("127.0.0.0", 8, "ipv4");
unlocatable.addSubnet("10.0.0.0", 8, "ipv4");
unlocatable.addSubnet("172.16.0.0", 12, "ipv4");
unlocatable.addSubnet("192.168.0.0", 16, "ipv4");
unlocatable.addSubnet("169.254.0.0", 16, "ipv4");
unlocatable.addAddress("::1", "ipv6");
unlocatable.addSubnet("fc00::", 7, "ipv6");
unlocatable.addSubnet("fe80::", 10, "ipv6");

/** Whether an address can have a GeoIP location at all (public unicast). */
export function isLocatable(address: string): boolean {
  const plain = address.startsWith("::ffff:") ? address.slice(7) : address;
  try {
    return !unlocatable.check(plain, isIPv6(plain) ? "ipv6" : "ipv4");
  } catch {
    return false;
  }
}

async function loadData(): Promise<Lookup> {
  const { default: geoip } = await import("geoip-lite");
  return (address) => {
    const found = geoip.lookup(address);
    if (!found || !Array.isArray(found.ll)) return undefined;
    const [latitude, longitude] = found.ll;
    if (typeof latitude !== "number" || typeof longitude !== "number") return undefined;
    return { latitude, longitude };
  };
}

export async function loadGeoLookup(
  options: { eager: boolean } = { eager: true },
): Promise<Lookup> {
  let loaded: Lookup | undefined = options.eager ? await loadData() : undefined;
  let started = loaded !== undefined;
  return (address) => {
    if (!isLocatable(address)) return undefined;
    if (loaded) return loaded(address);
    if (!started) {
      started = true;
      loadData().then(
        (lookup) => {
          loaded = lookup;
        },
        () => {
          started = false;
        },
      );
    }
    return undefined;
  };
}
