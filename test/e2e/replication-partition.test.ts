// Broken WAN links between regions (westus, eastus, westeurope): changes travel around a
// cut link through the third region, and regions cut off from each other while they
// take pushes (with a blob transfer caught mid-way by the cut) converge once the links
// heal, with one winner for a tag written on both sides.
// Owns: this file. Helpers: test/support/{cluster,replication-http}.ts.
import assert from "node:assert/strict";
import { after, before, describe } from "node:test";
import {
  clusterTest as clusterTestOf,
  startTestCluster,
  type TestCluster,
} from "../support/cluster.ts";
import {
  assertBlobServed,
  makeImage,
  pushImage,
  resolvedDigest,
  type TestImage,
} from "../support/replication-http.ts";
import { waitFor } from "../support/wait-for.ts";

const regions = ["westus", "eastus", "westeurope"] as const;
const [west, east, europe] = regions;
const received = "meridian_replication_bytes_received_total";
const MiB = 1024 * 1024;

describe("replication across broken links", () => {
  let cluster: TestCluster;

  const clusterTest = (name: string, body: () => Promise<void>): void =>
    clusterTestOf(() => cluster, name, body, 90_000);

  const assertLocalBlobs = async (region: string, repository: string, image: TestImage) => {
    for (const blob of [image.config, ...image.layers]) {
      assert.ok(
        await cluster.hasLocalBlob(region, repository, blob.digest),
        `${blob.digest} of ${repository} is stored in ${region}`,
      );
    }
  };

  before(async () => {
    // Anti-entropy stays out of the way (one round an hour): changes must travel around a
    // cut link in the change feeds, which carry what a replica learnt from its peers.
    cluster = await startTestCluster({ regions, wan: { rttMs: 10 }, antiEntropySeconds: 3600 });
  });

  after(async () => {
    await cluster?.dispose();
  });

  clusterTest(
    "a push reaches a region through a third one while their direct link is cut",
    async () => {
      const repository = "e2e/around";
      cluster.cluster.cut(west, europe);
      try {
        const fromWestBefore = await cluster.metric(europe, received, { source_region: west });
        const image = makeImage([256 * 1024, 512 * 1024], "around");
        await pushImage(cluster.url(west), repository, "v1", image);
        await cluster.waitConverged(repository, regions, 30_000);

        assert.ok(
          cluster.cluster.link(west, europe).isCut && cluster.cluster.link(europe, west).isCut,
        );
        const status = await cluster.status(europe);
        const westPeer = status.peers.find((peer) => peer.region === west);
        assert.equal(westPeer?.connected, false, "westeurope cannot reach westus meanwhile");
        assert.equal(
          await resolvedDigest(cluster.url(europe), repository, "v1"),
          image.manifest.digest,
        );
        await assertLocalBlobs(europe, repository, image);
        assert.equal(
          await cluster.metric(europe, received, { source_region: west }),
          fromWestBefore,
          "no byte came to westeurope from westus directly",
        );
        assert.ok(
          (await cluster.metric(europe, received, { source_region: east })) >= 768 * 1024,
          "westeurope fetched the layers from eastus",
        );
      } finally {
        cluster.cluster.heal(west, europe);
      }
    },
  );

  clusterTest("regions cut off while they take pushes converge after the links heal", async () => {
    const repository = "e2e/partition";
    const bigRepository = "e2e/partition-big";
    // A large layer on its way out of westus when the cut comes.
    for (const region of [east, europe]) cluster.cluster.link(region, west).setBandwidth(8_000_000);
    const big = makeImage([24 * MiB], "big");
    const fromWestBefore = await cluster.metric(east, received, { source_region: west });
    await pushImage(cluster.url(west), bigRepository, "v1", big);
    await waitFor(
      async () =>
        (await cluster.metric(east, received, { source_region: west })) > fromWestBefore + MiB,
      "eastus to start receiving the large layer",
      30_000,
      10,
    );
    cluster.cluster.cut(west, east);
    cluster.cluster.cut(west, europe);
    try {
      assert.ok(
        !(await cluster.hasLocalBlob(east, bigRepository, big.layers[0]?.digest ?? "")),
        "the cut lands while the large layer is still on its way",
      );
      const westOnly = makeImage([4096], "west-only");
      const eastOnly = makeImage([4096], "east-only");
      const europeOnly = makeImage([4096], "europe-only");
      const westBoth = makeImage([4096], "west-both");
      const eastBoth = makeImage([4096], "east-both");
      await Promise.all([
        pushImage(cluster.url(west), repository, "west", westOnly).then(() =>
          pushImage(cluster.url(west), repository, "both", westBoth),
        ),
        pushImage(cluster.url(east), repository, "east", eastOnly).then(() =>
          pushImage(cluster.url(east), repository, "both", eastBoth),
        ),
        pushImage(cluster.url(europe), repository, "europe", europeOnly),
      ]);
      // The two sides of the cut converge on their own, and differ.
      const sideDigest = await cluster.waitConverged(repository, [east, europe], 30_000);
      assert.notEqual(
        await cluster.stateDigest(west, repository),
        sideDigest,
        "westus is cut off: it cannot have the pushes of the other side",
      );

      cluster.cluster.heal(west, east);
      cluster.cluster.heal(west, europe);
      for (const region of [east, europe])
        cluster.cluster.link(region, west).setBandwidth(undefined);
      await cluster.waitConverged(repository, regions, 45_000);
      await cluster.waitConverged(bigRepository, regions, 45_000);

      const expected: Record<string, string> = {
        west: westOnly.manifest.digest,
        east: eastOnly.manifest.digest,
        europe: europeOnly.manifest.digest,
      };
      let winner = "";
      for (const region of regions) {
        for (const [tag, digest] of Object.entries(expected)) {
          assert.equal(
            await resolvedDigest(cluster.url(region), repository, tag),
            digest,
            `${tag} in ${region}`,
          );
        }
        const both = await resolvedDigest(cluster.url(region), repository, "both");
        winner ||= both;
        assert.equal(both, winner, `the tag written on both sides of the cut, in ${region}`);
      }
      assert.ok(
        winner === westBoth.manifest.digest || winner === eastBoth.manifest.digest,
        `"both" names one of the two images pushed to it, got ${winner}`,
      );
      for (const region of [east, europe]) {
        await assertLocalBlobs(region, bigRepository, big);
        const layer = big.layers[0];
        if (layer)
          await assertBlobServed(cluster.url(region), bigRepository, layer.digest, layer.size);
      }
    } finally {
      cluster.cluster.heal(west, east);
      cluster.cluster.heal(west, europe);
      for (const region of [east, europe])
        cluster.cluster.link(region, west).setBandwidth(undefined);
    }
  });
});
