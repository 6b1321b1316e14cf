// A replica back from an outage is read through at once: a manifest pushed to it right
// after it restarts is served by its peers, though their followers of it are still in
// the multi-second backoff the outage left them in. The restarted replica's own
// followers call its peers as it starts, and a peer that calls is taken as up.
// Owns: this file. Helpers: test/support/{cluster,registry-http,oci-fixtures}.ts.
import assert from "node:assert/strict";
import { after, before, describe } from "node:test";
import {
  clusterTest as clusterTestOf,
  startTestCluster,
  type TestCluster,
} from "../support/cluster.ts";
import { imageManifest, ociManifestType, randomBlob } from "../support/oci-fixtures.ts";
import { pushBlob, pushManifest } from "../support/registry-http.ts";
import { waitFor } from "../support/wait-for.ts";

const [west, east] = ["westus", "eastus"] as const;

describe("read-through of a peer back from an outage", () => {
  let cluster: TestCluster;
  const clusterTest = (name: string, body: () => Promise<void>): void =>
    clusterTestOf(() => cluster, name, body);

  before(async () => {
    // Anti-entropy stays out of the way: only the feeds and read-through move content.
    cluster = await startTestCluster({ regions: [west, east], antiEntropySeconds: 3600 });
  });
  after(async () => {
    await cluster?.dispose();
  });

  clusterTest("serves a manifest pushed to the restarted replica from its peer", async () => {
    await cluster.cluster.replica(east).process.stop();
    // Seven failed feed requests: westus's follower of eastus now waits 3.2-5 s between
    // tries (100 ms doubling, at most 5 s).
    await waitFor(
      async () =>
        (await cluster.metric(west, "meridian_replication_feed_errors_total", { peer: east })) >= 7,
      "westus's follower of eastus backing off",
      20_000,
    );
    await cluster.cluster.startReplica(east);
    const config = randomBlob(300);
    const layer = randomBlob(2048);
    await pushBlob(cluster.url(east), "back/app", config);
    await pushBlob(cluster.url(east), "back/app", layer);
    const manifest = imageManifest(config, [layer]);
    const put = await pushManifest(cluster.url(east), "back/app", "v1", manifest, ociManifestType);
    assert.equal(put.status, 201);
    const got = await fetch(`${cluster.url(west)}/v2/back/app/manifests/v1`, {
      headers: { Accept: ociManifestType },
    });
    assert.equal(got.status, 200, "westus read the manifest through from eastus");
    assert.equal(got.headers.get("docker-content-digest"), manifest.digest);
  });
});
