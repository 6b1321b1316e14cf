// End-to-end: import from the CNCF Distribution registry (Debian's docker-registry 2.8,
// started here on loopback over plain HTTP): a two-platform index and an SBOM referrer,
// which Distribution keeps under the tag-schema fallback (`sha256-<hex>`) for want of the
// referrers API. The target replica stores the same digests and serves the referrer
// through its own referrers API. Without the binary this test fails: it is installed by
// .ci/run (apt-get install docker-registry).
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import {
  type DistributionProcess,
  distributionBinary,
  startDistribution,
} from "../../bench/distribution-process.ts";
import { pushTwoPlatformImage, runImport, twoPlatformImage } from "../support/import-source.ts";
import { type MeridianProcess, startMeridian } from "../support/meridian-process.ts";

describe("meridian import from the CNCF Distribution registry", () => {
  let distribution: DistributionProcess;
  let target: MeridianProcess;
  const image = twoPlatformImage();

  before(async () => {
    if (!existsSync(distributionBinary)) {
      assert.fail(
        `${distributionBinary} is missing: install the Debian package docker-registry (apt-get install -y docker-registry), as .ci/run does`,
      );
    }
    distribution = await startDistribution();
    target = await startMeridian();
    await pushTwoPlatformImage(distribution.url, "tools/app", "1.0", image, { fallbackTag: true });
  });

  after(async () => {
    await distribution?.dispose();
    await target?.dispose();
  });

  it("copies the index, both platforms and the referrer with identical digests", async () => {
    const host = new URL(distribution.url).host;
    const job = await runImport(target.url, {
      source: `${host}/tools/app:1.0`,
      image: "tools/app:1.0",
      withReferrers: true,
    });
    assert.equal(job.state, "succeeded", job.reason);
    assert.equal(job.digest, image.index.digest);
    const tagged = await fetch(`${target.url}/v2/tools/app/manifests/1.0`);
    assert.equal(tagged.headers.get("docker-content-digest"), image.index.digest);
    assert.equal(await tagged.text(), image.index.json);
    for (const manifest of [image.amd64, image.arm64, image.referrer]) {
      const got = await fetch(`${target.url}/v2/tools/app/manifests/${manifest.digest}`);
      assert.equal(got.status, 200, manifest.digest);
      assert.equal(got.headers.get("docker-content-digest"), manifest.digest);
    }
    for (const blob of image.blobs) {
      const got = await fetch(`${target.url}/v2/tools/app/blobs/${blob.digest}`, {
        method: "HEAD",
      });
      assert.equal(got.status, 200, blob.digest);
    }
    const referrers = (await (
      await fetch(`${target.url}/v2/tools/app/referrers/${image.index.digest}`)
    ).json()) as { manifests: { digest: string }[] };
    assert.deepEqual(
      referrers.manifests.map((m) => m.digest),
      [image.referrer.digest],
    );

    const again = await runImport(target.url, {
      source: `${host}/tools/app:1.0`,
      image: "tools/app:1.0",
      withReferrers: true,
    });
    assert.equal(again.state, "succeeded", again.reason);
    assert.equal(again.progress.bytesTransferred, 0);
  });
});
