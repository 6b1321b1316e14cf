// Offline GeoIP: the coordinates of a public address from the GeoLite data bundled with
// the geoip-lite package (no network access at run time). Loaded on demand: the data
// takes a second and about 100 MiB to load, which only the global endpoint pays.
import type { Coordinates } from "./client-location.ts";

export async function loadGeoLookup(): Promise<(address: string) => Coordinates | undefined> {
  const { default: geoip } = await import("geoip-lite");
  return (address) => {
    const found = geoip.lookup(address);
    if (!found || !Array.isArray(found.ll)) return undefined;
    const [latitude, longitude] = found.ll;
    if (typeof latitude !== "number" || typeof longitude !== "number") return undefined;
    return { latitude, longitude };
  };
}
