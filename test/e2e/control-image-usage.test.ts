// End-to-end: where an image is, and what each region costs. While the link between two
// regions is cut, a tag pushed in one is visible there and pending in the other (missing
// its manifest and blobs); once healed it is visible in both. The usage view counts the
// bytes each region stores and the bytes each pair transferred, through the admin API and
// the CLI.
// Owns: this file. Helpers: test/support/{cluster,replication-http,wait-for}.ts.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, describe } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { ImageLocation } from "../../src/control/image-locator.ts";
import type { RegistryUsage } from "../../src/control/usage-api.ts";
import {
  clusterTest as clusterTestOf,
  startTestCluster,
  type TestCluster,
} from "../support/cluster.ts";
import { makeImage, pushImage } from "../support/replication-http.ts";
import { waitFor } from "../support/wait-for.ts";

const bin = fileURLToPath(new URL("../../bin/meridian.js", import.meta.url));
const run = promisify(execFile);

describe("image location and usage across regions", () => {
  let cluster: TestCluster;
  const clusterTest = (name: string, body: () => Promise<void>) =>
    clusterTestOf(() => cluster, name, body);
  const image = makeImage([700_000, 3_000], "located");

  before(async () => {
    cluster = await startTestCluster({ regions: ["westus", "eastus"], wan: { rttMs: 2 } });
  });
  after(async () => {
    await cluster?.dispose();
  });

  const locate = async (): Promise<ImageLocation> => {
    const response = await fetch(
      `${cluster.url("eastus")}/_meridian/admin/image?repository=team/located&tag=v1`,
    );
    assert.equal(response.status, 200);
    return (await response.json()) as ImageLocation;
  };

  clusterTest("a tag is pending where its content has not arrived, then visible", async () => {
    // eastus knows the replica set before the link goes.
    await cluster.waitQuiescent();
    cluster.cluster.cut("westus", "eastus");
    const digest = await pushImage(cluster.url("westus"), "team/located", "v1", image);
    const cut = await locate();
    assert.equal(cut.digest, digest);
    const byRegion = new Map(cut.regions.map((r) => [r.region, r]));
    assert.equal(byRegion.get("westus")?.state, "visible");
    const east = byRegion.get("eastus");
    assert.equal(east?.state, "pending");
    assert.equal(east?.missing?.manifest, true);
    assert.deepEqual(
      [...(east?.missing?.blobs ?? [])].sort(),
      [image.config.digest, ...image.layers.map((l) => l.digest)].sort(),
    );
    assert.match(east?.since ?? "", /^\d{4}-\d\d-\d\dT/);
    const { stdout } = await run(process.execPath, [
      bin,
      "repository",
      "show",
      "team/located:v1",
      "--registry",
      cluster.url("westus"),
    ]);
    assert.match(stdout, /eastus +pending +waiting for the manifest and 3 blobs since/);

    cluster.cluster.heal("westus", "eastus");
    await waitFor(
      async () => (await locate()).regions.every((r) => r.state === "visible"),
      "the tag to be visible in both regions",
      30_000,
      100,
    );
    const missing = await fetch(
      `${cluster.url("westus")}/_meridian/admin/image?repository=team/none&tag=v1`,
    );
    assert.equal(missing.status, 404);
  });

  clusterTest("usage counts stored bytes per region and transferred bytes per pair", async () => {
    const response = await fetch(`${cluster.url("westus")}/_meridian/admin/usage`);
    assert.equal(response.status, 200);
    const usage = (await response.json()) as RegistryUsage;
    const imageBytes = image.config.size + image.layers.reduce((sum, l) => sum + l.size, 0);
    for (const region of usage.regions) {
      assert.equal(region.reachable, true, region.region);
      assert.ok(region.storedBytes >= imageBytes, `${region.region} stores the image`);
    }
    const westToEast = usage.transfers.find((t) => t.from === "westus" && t.to === "eastus");
    assert.ok(westToEast && westToEast.bytes >= imageBytes, JSON.stringify(usage.transfers));
    const { stdout } = await run(process.execPath, [
      bin,
      "replication",
      "usage",
      "--registry",
      cluster.url("eastus"),
      "-o",
      "json",
    ]);
    assert.deepEqual((JSON.parse(stdout) as RegistryUsage).regions.map((r) => r.region).sort(), [
      "eastus",
      "westus",
    ]);
  });
});
