// Content before pointers, seen by a client: while a multi-layer image replicates into a
// region through a bandwidth-limited WAN link, a client polling that region for the tag
// keeps getting the previous image, and never gets a manifest before every blob it names
// is present there.
// Owns: this file. Helpers: test/support/{cluster,replication-http}.ts.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startTestCluster, type TestCluster } from "../support/cluster.ts";
import { getManifest, headBlobStatus, makeImage, pushImage } from "../support/replication-http.ts";

const source = "westus";
const receiver = "eastus";
const repository = "e2e/visibility";
const MiB = 1024 * 1024;

interface ManifestJson {
  config: { digest: string };
  layers: { digest: string }[];
}

describe("content before pointers across regions", () => {
  let cluster: TestCluster;

  before(async () => {
    cluster = await startTestCluster({
      regions: [source, receiver],
      wan: { rttMs: 4 },
      antiEntropySeconds: 3600,
    });
  });

  after(async () => {
    await cluster?.dispose();
  });

  it("a polling client never gets a manifest before every layer it names is present", {
    timeout: 90_000,
  }, async () => {
    try {
      const previous = makeImage([64 * 1024, 96 * 1024], "previous");
      await pushImage(cluster.url(source), repository, "latest", previous);
      await cluster.waitConverged(repository, [source, receiver], 30_000);
      // 24 MiB at 16 MB/s: the layers take about a second and a half to cross.
      cluster.cluster.link(receiver, source).setBandwidth(16_000_000);
      const next = makeImage([6 * MiB, 6 * MiB, 6 * MiB, 6 * MiB], "next");

      const violations: string[] = [];
      const answers: string[] = [];
      let previousAfterPush = 0;
      let pushed = false;
      let done = false;
      const poll = async () => {
        const deadline = Date.now() + 60_000;
        while (!done && Date.now() < deadline) {
          const answer = await getManifest(cluster.url(receiver), repository, "latest");
          if (answer.status !== 200 || !answer.bytes) {
            violations.push(`GET latest answered ${answer.status}`);
            continue;
          }
          const parsed = JSON.parse(answer.bytes.toString("utf8")) as ManifestJson;
          const named = [parsed.config.digest, ...parsed.layers.map((layer) => layer.digest)];
          // First what the region holds itself (the peer API never reads through),
          // then what a client sees.
          const local = await Promise.all(
            named.map((digest) => cluster.hasLocalBlob(receiver, repository, digest)),
          );
          const heads = await Promise.all(
            named.map((digest) => headBlobStatus(cluster.url(receiver), repository, digest)),
          );
          for (const [i, digest] of named.entries()) {
            if (!local[i]) violations.push(`${answer.digest} served without ${digest} present`);
            if (heads[i] !== 200)
              violations.push(`${answer.digest} served while HEAD ${digest} -> ${heads[i]}`);
          }
          if (answers[answers.length - 1] !== answer.digest) answers.push(answer.digest ?? "");
          if (answer.digest === previous.manifest.digest && pushed) previousAfterPush += 1;
          if (answer.digest === next.manifest.digest) done = true;
        }
      };
      const polling = poll();
      await pushImage(cluster.url(source), repository, "latest", next);
      pushed = true;
      await polling;

      assert.deepEqual(violations, [], "manifests served before their content");
      assert.deepEqual(
        answers,
        [previous.manifest.digest, next.manifest.digest],
        "the tag keeps its previous image until the new one is complete, then switches",
      );
      assert.ok(
        previousAfterPush > 0,
        "the client polled while the new image was on its way (the test saw the window)",
      );
      await cluster.waitConverged(repository, [source, receiver], 30_000);
    } catch (error) {
      if (error instanceof Error) error.message += `\n${cluster.logs()}`;
      throw error;
    }
  });
});
