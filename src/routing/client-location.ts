// Where a client is, in order of trust: a location header set by a trusted front proxy
// (only when the request comes from one of the configured trusted addresses), then the
// configured CIDR -> region map, then an offline GeoIP lookup, then a default region. The
// location is a region name or coordinates.
import { BlockList, isIPv4 } from "node:net";
import { findRegion } from "../geo/regions.ts";

export interface Coordinates {
  latitude: number;
  longitude: number;
}

export interface ClientLocation {
  /** The region the client is in, when known by name. */
  region?: string | undefined;
  coordinates: Coordinates;
  /** How the location was found. */
  source: "header" | "cidr" | "geoip" | "default";
}

export interface ClientLocatorOptions {
  /** Addresses (CIDRs) of front proxies whose location header is believed. */
  trustedProxies: string[];
  /** The header such a proxy sets: a region name, or "<latitude>,<longitude>". */
  header: string;
  /** CIDR -> region name. */
  cidrRegions: Record<string, string>;
  /** Where clients are when nothing else says: a region name. */
  defaultRegion: string;
  /** An offline GeoIP lookup (coordinates of an address), consulted after the CIDR map. */
  geoLookup?: ((address: string) => Coordinates | undefined) | undefined;
}

export class ClientLocator {
  private readonly trusted = new BlockList();
  private readonly cidrs: { list: BlockList; region: string }[] = [];
  private readonly header: string;
  private readonly fallback: ClientLocation;
  private readonly geoLookup: ClientLocatorOptions["geoLookup"];

  constructor(options: ClientLocatorOptions) {
    for (const cidr of options.trustedProxies) addCidr(this.trusted, cidr);
    for (const [cidr, region] of Object.entries(options.cidrRegions)) {
      const list = new BlockList();
      addCidr(list, cidr);
      this.cidrs.push({ list, region });
    }
    this.header = options.header.toLowerCase();
    this.geoLookup = options.geoLookup;
    const home = findRegion(options.defaultRegion);
    this.fallback = {
      region: options.defaultRegion,
      coordinates: home ?? { latitude: 0, longitude: 0 },
      source: "default",
    };
  }

  locate(
    remoteAddress: string | undefined,
    headers: Record<string, string | string[] | undefined>,
  ): ClientLocation {
    const address = normalise(remoteAddress ?? "");
    const family = isIPv4(address) ? "ipv4" : "ipv6";
    if (address && this.trusted.check(address, family)) {
      const value = headers[this.header];
      const fromHeader = parseLocation(Array.isArray(value) ? value[0] : value);
      if (fromHeader) return { ...fromHeader, source: "header" };
    }
    for (const { list, region } of this.cidrs) {
      if (address && list.check(address, family)) {
        const known = findRegion(region);
        if (known) return { region, coordinates: known, source: "cidr" };
      }
    }
    const located = address ? this.geoLookup?.(address) : undefined;
    if (located) return { coordinates: located, source: "geoip" };
    return this.fallback;
  }
}

function parseLocation(value: string | undefined): Omit<ClientLocation, "source"> | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  const region = findRegion(trimmed.toLowerCase());
  if (region) return { region: region.name, coordinates: region };
  const match = /^(-?\d{1,2}(?:\.\d+)?),\s*(-?\d{1,3}(?:\.\d+)?)$/.exec(trimmed);
  if (!match) return undefined;
  const latitude = Number(match[1]);
  const longitude = Number(match[2]);
  if (Math.abs(latitude) > 90 || Math.abs(longitude) > 180) return undefined;
  return { coordinates: { latitude, longitude } };
}

/** IPv4 clients of a dual-stack socket appear as ::ffff:a.b.c.d. */
function normalise(address: string): string {
  return address.startsWith("::ffff:") ? address.slice(7) : address;
}

function addCidr(list: BlockList, cidr: string): void {
  const [address = "", bits] = cidr.split("/");
  const family = isIPv4(address) ? "ipv4" : "ipv6";
  if (bits === undefined) list.addAddress(address, family);
  else list.addSubnet(address, Number(bits), family);
}
