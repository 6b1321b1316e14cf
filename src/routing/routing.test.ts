import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { waitFor } from "../../test/support/wait-for.ts";
import { findRegion } from "../geo/regions.ts";
import { ClientLocator } from "./client-location.ts";
import { isLocatable, loadGeoLookup } from "./geoip-lookup.ts";
import { type RoutableReplica, rankReplicas } from "./replica-ranking.ts";
import { pinLocation, readPin } from "./sticky-upload.ts";

const at = (region: string) => {
  const found = findRegion(region);
  if (!found) throw new Error(region);
  return found;
};

const replica = (region: string, extra: Partial<RoutableReplica> = {}): RoutableReplica => ({
  region,
  url: `http://${region}`,
  coordinates: at(region),
  healthy: true,
  routingEnabled: true,
  ...extra,
});

describe("client location", () => {
  const locator = new ClientLocator({
    trustedProxies: ["127.0.0.1/32"],
    header: "X-Client-Region",
    cidrRegions: { "127.0.0.2/32": "eastus", "10.1.0.0/16": "westeurope" },
    defaultRegion: "westus",
  });

  it("believes the location header only from a trusted proxy", () => {
    assert.equal(
      locator.locate("127.0.0.1", { "x-client-region": "westeurope" }).region,
      "westeurope",
    );
    assert.equal(
      locator.locate("::ffff:127.0.0.1", { "x-client-region": "eastus" }).source,
      "header",
    );
    const spoofed = locator.locate("127.0.0.2", { "x-client-region": "westeurope" });
    assert.deepEqual([spoofed.region, spoofed.source], ["eastus", "cidr"]);
  });

  it("accepts coordinates in the header and falls back to the CIDR map, then the default", () => {
    const coords = locator.locate("127.0.0.1", { "x-client-region": "48.85, 2.35" });
    assert.deepEqual(coords.coordinates, { latitude: 48.85, longitude: 2.35 });
    assert.equal(locator.locate("10.1.2.3", {}).region, "westeurope");
    assert.deepEqual(
      [locator.locate("127.0.0.9", {}).region, locator.locate("127.0.0.9", {}).source],
      ["westus", "default"],
    );
    assert.equal(locator.locate("127.0.0.1", { "x-client-region": "999,999" }).source, "default");
  });
});

describe("GeoIP", () => {
  it("never locates loopback or private addresses, and loads lazily when asked to", async () => {
    for (const address of ["127.0.0.1", "::1", "::ffff:127.0.0.2", "10.1.2.3", "192.168.0.9"]) {
      assert.equal(isLocatable(address), false, address);
    }
    assert.equal(isLocatable("81.2.69.142"), true);
    const lookup = await loadGeoLookup({ eager: false });
    assert.equal(lookup("127.0.0.1"), undefined);
    // The first public address starts the load and gets no answer; later ones do.
    assert.equal(lookup("81.2.69.142"), undefined);
    await waitFor(async () => lookup("81.2.69.142") !== undefined, "the GeoIP data to load");
  });

  it("locates public addresses offline, so that they rank their continent's replica first", async () => {
    const lookup = await loadGeoLookup();
    const locator = new ClientLocator({
      trustedProxies: [],
      header: "x-client-region",
      cidrRegions: {},
      defaultRegion: "westus",
      geoLookup: lookup,
    });
    // Addresses the GeoLite data places in Britain and in the United States; nothing is sent to them.
    const british = locator.locate("81.2.69.142", {});
    assert.equal(british.source, "geoip");
    const replicas = [replica("westus"), replica("eastus"), replica("westeurope")];
    assert.equal(rankReplicas(replicas, british.coordinates, "distance")[0]?.region, "westeurope");
    const american = locator.locate("8.8.8.8", {});
    assert.equal(american.source, "geoip");
    assert.notEqual(
      rankReplicas(replicas, american.coordinates, "distance")[0]?.region,
      "westeurope",
    );
    assert.equal(locator.locate("127.0.0.1", {}).source, "default");
  });
});

describe("replica ranking", () => {
  const all = [replica("westus"), replica("eastus"), replica("westeurope")];

  it("puts the nearest replica first", () => {
    assert.deepEqual(
      rankReplicas(all, at("westus2"), "distance").map((r) => r.region),
      ["westus", "eastus", "westeurope"],
    );
    assert.equal(rankReplicas(all, at("northeurope"), "distance")[0]?.region, "westeurope");
    assert.equal(rankReplicas(all, at("canadacentral"), "distance")[0]?.region, "eastus");
  });

  it("skips unhealthy and disabled replicas", () => {
    const mixed = [
      replica("westus", { healthy: false }),
      replica("eastus", { routingEnabled: false }),
      replica("westeurope"),
    ];
    assert.deepEqual(
      rankReplicas(mixed, at("westus"), "distance").map((r) => r.region),
      ["westeurope"],
    );
  });

  it("orders by measured round trip in latency mode", () => {
    const measured = [replica("westus", { rttMs: 80 }), replica("westeurope", { rttMs: 5 })];
    assert.equal(rankReplicas(measured, at("westus"), "latency")[0]?.region, "westeurope");
  });
});

describe("sticky uploads", () => {
  it("pins an upload Location to its replica and reads the pin back", () => {
    const pinned = pinLocation("/v2/a/blobs/uploads/123", "eastus");
    assert.equal(pinned, "/v2/a/blobs/uploads/123?_meridian_replica=eastus");
    assert.deepEqual(readPin(`${pinned}&digest=sha256:x`), {
      region: "eastus",
      url: "/v2/a/blobs/uploads/123?digest=sha256%3Ax",
    });
    assert.equal(pinLocation("/v2/a/blobs/sha256:abc", "eastus"), "/v2/a/blobs/sha256:abc");
    assert.deepEqual(readPin("/v2/a/manifests/t"), { url: "/v2/a/manifests/t" });
  });
});
