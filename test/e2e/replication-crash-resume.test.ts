// A replica killed with SIGKILL in the middle of receiving a large image (~200 MiB in four
// layers, through a 50 MB/s WAN link so that the transfer takes seconds) is restarted
// and converges: every blob it serves matches its digest, and the bytes it received in
// both lives add up to about the unique blob bytes, so finished blobs were not fetched
// again and partial ones resumed with Range instead of starting over.
// Owns: this file. Helpers: test/support/{cluster,replication-http}.ts.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startTestCluster, type TestCluster } from "../support/cluster.ts";
import {
  assertBlobServed,
  getManifest,
  makeImage,
  pushImage,
  type TestImage,
} from "../support/replication-http.ts";
import { waitFor } from "../support/wait-for.ts";

const source = "westus";
const victim = "eastus";
const repository = "e2e/large";
const received = "meridian_replication_bytes_received_total";
const MiB = 1024 * 1024;
/** Into the victim, so that 200 MiB take about four seconds. */
const bytesPerSecond = 50_000_000;

describe("a replica killed while it receives a large image", () => {
  let cluster: TestCluster;
  let image: TestImage;

  before(async () => {
    // No anti-entropy round during the test: the restarted follower resumes on its own.
    cluster = await startTestCluster({
      regions: [source, victim],
      wan: { rttMs: 2 },
      antiEntropySeconds: 3600,
    });
    // Both directions of the link through which the victim reaches the source: blob
    // bytes come back on it.
    cluster.cluster.link(victim, source).setBandwidth(bytesPerSecond);
    // Sizes differ so that, at the kill, some layers are complete and some are partial.
    image = makeImage([8 * MiB, 24 * MiB, 64 * MiB, 104 * MiB], "large");
  });

  after(async () => {
    await cluster?.dispose();
  });

  it("resumes after a restart without fetching finished blobs again", {
    timeout: 120_000,
  }, async () => {
    try {
      const blobs = [image.config, ...image.layers];
      const uniqueBytes = blobs.reduce((sum, blob) => sum + blob.size, 0);
      await pushImage(cluster.url(source), repository, "v1", image);

      // Kill once a good part has arrived but the image is not complete in the victim.
      let receivedBeforeKill = 0;
      await waitFor(
        async () => {
          receivedBeforeKill = await cluster.metric(victim, received);
          return receivedBeforeKill >= 0.4 * uniqueBytes;
        },
        "the victim to receive 40% of the image",
        30_000,
        10,
      );
      // The metric dies with the process: read it last thing before the kill.
      receivedBeforeKill = await cluster.metric(victim, received);
      await cluster.cluster.replica(victim).process.kill9();
      assert.ok(
        receivedBeforeKill < uniqueBytes,
        `the kill must land mid-transfer (received ${receivedBeforeKill} of ${uniqueBytes})`,
      );
      const linkBytesAtKill = cluster.cluster.link(victim, source).stats().bytesBackward;

      await cluster.cluster.startReplica(victim);
      await cluster.waitConverged(repository, [source, victim], 60_000);
      await waitFor(
        async () => (await cluster.status(victim)).pending.blobs === 0,
        "the victim to have no blob transfer left",
        10_000,
      );
      const receivedAfterRestart = await cluster.metric(victim, received);
      const linkBytes = cluster.cluster.link(victim, source).stats().bytesBackward;

      const manifest = await getManifest(cluster.url(victim), repository, "v1");
      assert.equal(manifest.status, 200, "the image is pullable in the restarted replica");
      assert.equal(manifest.digest, image.manifest.digest);
      assert.ok(manifest.bytes?.equals(Buffer.from(image.manifest.json)), "manifest bytes");
      for (const blob of blobs) {
        // Stored by replication itself (a GET could otherwise read through to westus).
        assert.ok(
          await cluster.hasLocalBlob(victim, repository, blob.digest),
          `${blob.digest} is stored in ${victim}`,
        );
        await assertBlobServed(cluster.url(victim), repository, blob.digest, blob.size);
      }

      const total = receivedBeforeKill + receivedAfterRestart;
      const report = `received ${receivedBeforeKill} bytes before the kill and ${receivedAfterRestart} after the restart (${(total / uniqueBytes).toFixed(3)}x of ${uniqueBytes} unique blob bytes); the link delivered ${linkBytesAtKill} bytes before the kill and ${linkBytes} in all (${(linkBytes / uniqueBytes).toFixed(3)}x)`;
      process.stderr.write(`# ${report}\n`);
      assert.ok(receivedAfterRestart > 0, `the restarted replica fetched the rest: ${report}`);
      assert.ok(
        total < 1.1 * uniqueBytes,
        `finished blobs must not be fetched again, partial ones must resume: ${report}`,
      );
      // The link's own count cannot miss bytes that arrived between the last metric read
      // and the kill; it also carries feed pages and headers, which are small.
      assert.ok(linkBytes < 1.1 * uniqueBytes, `bytes the WAN link delivered: ${report}`);
    } catch (error) {
      if (error instanceof Error) error.message += `\n${cluster.logs()}`;
      throw error;
    }
  });
});
