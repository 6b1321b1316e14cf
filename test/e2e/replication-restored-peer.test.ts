// End-to-end: a peer whose data was replaced (a wiped disk, a restored backup) starts a
// new change log with small sequence numbers. Its followers notice the new log identity
// and follow it from the start instead of skipping what it writes below their old
// checkpoint. Anti-entropy is slowed down so that only the feed can deliver the change.
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startTestCluster, type TestCluster } from "../support/cluster.ts";
import { makeImage, pushImage, resolvedDigest } from "../support/replication-http.ts";

describe("a peer with replaced data", () => {
  let tc: TestCluster;
  before(async () => {
    tc = await startTestCluster({
      regions: ["westus", "eastus"],
      antiEntropySeconds: 3600,
      wan: { rttMs: 0 },
    });
  });
  after(() => tc?.dispose());

  it("is followed from the start of its new change log", async () => {
    // Many changes in eastus, so that westus's checkpoint is well past a fresh log's head.
    for (let i = 0; i < 5; i += 1) {
      await pushImage(tc.url("eastus"), "history/app", `v${i}`, makeImage([256, 512], `h${i}`));
    }
    await tc.waitConverged("history/app", ["westus", "eastus"], 20_000);

    await tc.cluster.replica("eastus").process.stop();
    await rm(join(tc.dir, "eastus"), { recursive: true, force: true });
    // The restored eastus cannot reach westus, so it does not relearn the history (which
    // would push its new log past westus's old checkpoint and hide the problem).
    tc.cluster.link("eastus", "westus").cut();
    await tc.cluster.startReplica("eastus");

    const image = makeImage([1024], "after-restore");
    await pushImage(tc.url("eastus"), "restored/app", "v1", image);
    // State digests come from the peer API, which never reads through to other replicas.
    await tc.waitConverged("restored/app", ["westus", "eastus"], 20_000);
    // westus keeps what it had learnt before the restore.
    assert.notEqual(await resolvedDigest(tc.url("westus"), "history/app", "v0"), "404");
  });
});
