// Which regions the map offers and why some cannot hold a replica.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ReplicaRecord } from "../control/replica-set.ts";
import { allRegions } from "../geo/regions.ts";
import { regionChoices } from "./region-choices.ts";

const record = (region: string, extra: Partial<ReplicaRecord> = {}): ReplicaRecord => ({
  region,
  home: false,
  globalEndpointRouting: true,
  state: "Succeeded",
  provisioner: "local",
  createdAt: "2026-12-01T00:00:00.000Z",
  ...extra,
});

describe("region choices", () => {
  it("offers every catalogue region with its coordinates where replicas can be added", () => {
    const choices = regionChoices([record("westus", { home: true })], true);
    assert.equal(choices.length, allRegions().length);
    const west = choices.find((c) => c.name === "westus");
    assert.equal(west?.available, true, "a replica's region is shown as a replica by the page");
    assert.ok(choices.every((c) => c.latitude !== undefined && c.available && !c.reason));
  });

  it("says why no region is available on a registry that does not replicate", () => {
    const choices = regionChoices([], false);
    assert.ok(choices.every((c) => !c.available && c.reason?.includes("replication.secret")));
  });

  it("adds custom locations, placed when they have coordinates and never available", () => {
    const choices = regionChoices(
      [record("lab-1", { latitude: 10, longitude: 20 }), record("lab-2")],
      true,
    );
    const placed = choices.find((c) => c.name === "lab-1");
    const lost = choices.find((c) => c.name === "lab-2");
    assert.deepEqual([placed?.latitude, placed?.longitude, placed?.available], [10, 20, false]);
    assert.equal(lost?.latitude, undefined);
    assert.match(lost?.reason ?? "", /without coordinates/);
  });
});
