import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { allRegions, distanceKm, findRegion } from "./regions.ts";

describe("region catalogue", () => {
  it("knows the big clouds' registry regions, each once", () => {
    for (const name of ["westus", "eastus", "canadacentral", "westeurope", "southeastasia"]) {
      assert.ok(findRegion(name), name);
    }
    const names = allRegions().map((r) => r.name);
    assert.equal(new Set(names).size, names.length);
    assert.equal(findRegion("atlantis"), undefined);
  });

  it("measures great-circle distances", () => {
    const westus = findRegion("westus");
    const eastus = findRegion("eastus");
    const westeurope = findRegion("westeurope");
    assert.ok(westus && eastus && westeurope);
    assert.equal(distanceKm(westus, westus), 0);
    const coastToCoast = distanceKm(westus, eastus);
    assert.ok(coastToCoast > 3500 && coastToCoast < 4000, String(coastToCoast));
    assert.ok(distanceKm(eastus, westeurope) < distanceKm(westus, westeurope));
  });
});
