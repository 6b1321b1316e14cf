// Merge rules for every record kind across three regions (westus, eastus, westeurope):
// a deleted blob stays deleted after every feed relayed every record around the triangle
// and anti-entropy ran, a later upload links it again, and a replica whose state lost a
// record is repaired by anti-entropy, blob links included.
// Owns: this file. Helpers: test/support/{cluster,replication-http,registry-http}.ts.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe } from "node:test";
import Database from "better-sqlite3";
import {
  clusterTest as clusterTestOf,
  startTestCluster,
  type TestCluster,
} from "../support/cluster.ts";
import { pushBlob } from "../support/registry-http.ts";
import { headBlobStatus, makeImage, pushImage } from "../support/replication-http.ts";
import { waitFor } from "../support/wait-for.ts";

const regions = ["westus", "eastus", "westeurope"] as const;
const [west, east, europe] = regions;

describe("merge rules across three regions", () => {
  let cluster: TestCluster;

  const clusterTest = (name: string, body: () => Promise<void>): void =>
    clusterTestOf(() => cluster, name, body);

  /** Every feed drained, then an anti-entropy round in every region, then drained again. */
  const settle = async () => {
    await cluster.waitQuiescent();
    for (const region of regions) await cluster.reconcile(region);
    await cluster.waitQuiescent();
  };

  const deleteBlob = async (region: string, repository: string, digest: string) => {
    const response = await fetch(`${cluster.url(region)}/v2/${repository}/blobs/${digest}`, {
      method: "DELETE",
      signal: AbortSignal.timeout(10_000),
    });
    await response.arrayBuffer();
    return response.status;
  };

  before(async () => {
    // Anti-entropy runs only when a test asks for it (cluster.reconcile).
    cluster = await startTestCluster({ regions, wan: { rttMs: 6 }, antiEntropySeconds: 3600 });
  });

  after(async () => {
    await cluster?.dispose();
  });

  clusterTest(
    "a deleted blob stays deleted in every region after relays and anti-entropy",
    async () => {
      const repository = "e2e/blob-delete";
      const image = makeImage([4096], "blob-delete");
      const layer = image.layers[0];
      assert.ok(layer);
      // eastus and westeurope do not talk while the push and the delete happen: westeurope's
      // feed then still relays the old link to eastus after eastus applied the delete.
      cluster.cluster.cut(east, europe);
      try {
        await pushImage(cluster.url(west), repository, "v1", image);
        for (const region of [east, europe]) {
          await waitFor(
            () => cluster.hasLocalBlob(region, repository, layer.digest),
            `the layer linked in ${region}`,
            30_000,
          );
        }
        assert.equal(await deleteBlob(west, repository, layer.digest), 202);
        await waitFor(
          async () => !(await cluster.hasLocalBlob(east, repository, layer.digest)),
          "the delete applied in eastus",
          30_000,
        );
      } finally {
        cluster.cluster.heal(east, europe);
      }
      await settle();
      for (const region of regions) {
        assert.equal(
          await cluster.hasLocalBlob(region, repository, layer.digest),
          false,
          `no link in ${region}`,
        );
        assert.equal(
          await headBlobStatus(cluster.url(region), repository, layer.digest),
          404,
          `HEAD in ${region}`,
        );
      }
      const digest = await cluster.waitConverged(repository);
      for (const region of regions) {
        assert.equal(await cluster.stateDigest(region, repository), digest, `state of ${region}`);
      }

      // A later upload (a newer stamp) links the blob again everywhere.
      await pushBlob(cluster.url(east), repository, layer);
      await settle();
      for (const region of regions) {
        assert.equal(
          await headBlobStatus(cluster.url(region), repository, layer.digest),
          200,
          `HEAD in ${region} after the new upload`,
        );
      }
    },
  );

  clusterTest("anti-entropy restores a blob link a replica lost", async () => {
    const repository = "e2e/lost-link";
    const image = makeImage([2048], "lost-link");
    const layer = image.layers[0];
    assert.ok(layer);
    await pushImage(cluster.url(west), repository, "v1", image);
    await cluster.waitConverged(repository);
    await cluster.waitQuiescent();
    // westeurope loses the link (as a restored backup would): its state differs now.
    await cluster.cluster.replica(europe).process.stop();
    const db = new Database(join(cluster.dir, europe, "metadata.db"));
    try {
      const removed = db
        .prepare("DELETE FROM blob_links WHERE repository = ? AND digest = ?")
        .run(repository, layer.digest);
      assert.equal(removed.changes, 1);
    } finally {
      db.close();
    }
    await cluster.cluster.startReplica(europe);
    await cluster.waitQuiescent();
    assert.equal(await cluster.hasLocalBlob(europe, repository, layer.digest), false);
    assert.notEqual(
      await cluster.stateDigest(europe, repository),
      await cluster.stateDigest(west, repository),
      "the state digest sees blob links",
    );
    assert.ok((await cluster.reconcile(europe)) >= 1, "westeurope repairs the repository");
    assert.equal(await cluster.hasLocalBlob(europe, repository, layer.digest), true);
    await cluster.waitConverged(repository);
    assert.ok(
      (await cluster.metric(europe, "meridian_replication_anti_entropy_repairs_total")) >= 1,
    );
  });
});
