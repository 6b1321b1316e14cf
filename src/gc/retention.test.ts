// Retention with an injected clock, in two regions relaying their change logs: expired
// untagged manifests go everywhere (stamped deletes that replicate), tagged ones, children
// of kept indexes and subjects of kept referrers stay, and referrers go with their subject.
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import type { ManifestNode } from "../metadata/metadata-store.ts";
import { digestOf } from "../oci/digest.ts";
import { mediaTypes } from "../oci/media-types.ts";
import type { Tag } from "../oci/reference.ts";
import {
  assertImageIntact,
  collect,
  hasManifest,
  openRegion,
  pushImage,
  relay,
  relayUntilQuiet,
  type TestImage,
  type TestRegion,
  testImage,
} from "./gc-test-regions.ts";
import { planRetention } from "./retention-plan.ts";

const day = 86_400_000;
let offsetMs = 0;
const now = () => Date.now() + offsetMs;
// Each test starts at the wall clock's time plus whatever the ones before added.
const opened: TestRegion[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((region) => region.cleanup()));
});

async function pushIndex(
  region: TestRegion,
  repository: string,
  children: TestImage[],
  tag: string,
) {
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: mediaTypes.ociIndex,
      manifests: children.map((c) => ({
        mediaType: mediaTypes.ociManifest,
        digest: c.digest,
        size: c.manifest.length,
      })),
    }),
  );
  await region.registry.manifests.put(
    repository,
    { kind: "tag", tag: tag as Tag },
    bytes,
    mediaTypes.ociIndex,
  );
  return digestOf(bytes);
}

describe("retention", () => {
  it("expires old untagged manifests in every region and keeps what kept ones need", async () => {
    const a = await openRegion("a", { now });
    const b = await openRegion("b", { now });
    opened.push(a, b);
    const layer = Buffer.from("common layer");
    const tagged = testImage("tagged", [layer]);
    const untagged = testImage("untagged", [layer, Buffer.from("only untagged")]);
    const amd64 = testImage("amd64", [layer]);
    const arm64 = testImage("arm64", [layer]);
    const signed = testImage("signed subject", [layer]);
    await pushImage(a, "team/app", tagged, "v1");
    await pushImage(a, "team/app", untagged);
    await pushImage(a, "team/app", amd64);
    await pushImage(a, "team/app", arm64);
    const index = await pushIndex(a, "team/app", [amd64, arm64], "multi");
    await pushImage(a, "team/app", signed);
    // A signature of the untagged image, and a tagged signature of another untagged one.
    const orphanSignature = testImage("sig of untagged", [Buffer.from("sig 1")], {
      subject: {
        mediaType: mediaTypes.ociManifest,
        digest: untagged.digest,
        size: untagged.manifest.length,
      },
    });
    const keptSignature = testImage("sig kept", [Buffer.from("sig 2")], {
      subject: {
        mediaType: mediaTypes.ociManifest,
        digest: signed.digest,
        size: signed.manifest.length,
      },
    });
    await pushImage(a, "team/app", orphanSignature);
    await pushImage(a, "team/app", keptSignature, "sig");
    // Another repository no policy covers.
    await pushImage(a, "other/app", untagged);
    await a.policies.set({ repositories: "team/**", untaggedDays: 7 });
    await relayUntilQuiet([a, b]);

    // Six days on: nothing is old enough.
    offsetMs = 6 * day;
    const early = await collect(b, { graceSeconds: 3600, now });
    assert.equal(early.repositories.length, 0);

    offsetMs = 8 * day;
    const report = await collect(b, { graceSeconds: 3600, now });
    assert.deepEqual(
      report.repositories.map((r) => [r.repository, r.manifests]),
      [["team/app", 2]],
    );
    for (const [image, present] of [
      [tagged, true],
      [untagged, false],
      [orphanSignature, false],
      [amd64, true],
      [arm64, true],
      [signed, true],
      [keptSignature, true],
    ] as const) {
      assert.equal(
        await hasManifest(b, "team/app", image.digest),
        present,
        image.config.toString(),
      );
    }
    assert.ok(await hasManifest(b, "team/app", index));
    assert.ok(await hasManifest(b, "other/app", untagged.digest));

    // The deletes replicate: region a converges without a pass of its own.
    await relayUntilQuiet([a, b]);
    assert.equal(await hasManifest(a, "team/app", untagged.digest), false);
    assert.equal(await hasManifest(a, "team/app", orphanSignature.digest), false);
    assert.equal(
      await a.metadata.stateDigest("team/app"),
      await b.metadata.stateDigest("team/app"),
    );
    // Its own pass finds nothing more to expire, and the kept images read back whole.
    const again = await collect(a, { graceSeconds: 3600, now });
    assert.equal(again.repositories.filter((r) => r.manifests > 0).length, 0);
    for (const region of [a, b]) {
      for (const image of [tagged, amd64, arm64, signed, keptSignature]) {
        await assertImageIntact(region, "team/app", image);
      }
    }
  });

  for (const order of ["the expiry first", "the index first"]) {
    it(`an index pushed elsewhere keeps a child another region expired (${order})`, async () => {
      const a = await openRegion("a", { now });
      const b = await openRegion("b", { now });
      opened.push(a, b);
      const child = testImage("child", [Buffer.from("child layer")]);
      await pushImage(a, "team/race", child);
      await a.policies.set({ repositories: "team/**", untaggedDays: 1 });
      await relayUntilQuiet([a, b]);
      offsetMs += 2 * day;
      // a pushes an index of the old untagged child while b, not knowing the index yet,
      // expires the child.
      const index = await pushIndex(a, "team/race", [child], "multi");
      const report = await collect(b, { graceSeconds: 3600, now });
      assert.equal(report.repositories[0]?.manifests, 1);
      assert.equal(await hasManifest(b, "team/race", child.digest), false);
      if (order === "the expiry first") {
        await relay(b, a);
        assert.ok(await hasManifest(a, "team/race", child.digest), "a keeps the index's child");
      } else {
        await relay(a, b);
        assert.ok(await hasManifest(b, "team/race", child.digest), "the index brings its child");
      }
      await relayUntilQuiet([a, b]);
      for (const region of [a, b]) {
        assert.ok(await hasManifest(region, "team/race", index), `${region.name} has the index`);
        assert.ok(await hasManifest(region, "team/race", child.digest), `${region.name}: child`);
        await assertImageIntact(region, "team/race", child);
      }
      assert.equal(
        await a.metadata.stateDigest("team/race"),
        await b.metadata.stateDigest("team/race"),
      );
      // The next passes keep them: the child is an index's child now.
      for (const region of [a, b]) {
        const again = await collect(region, { graceSeconds: 3600, now });
        assert.equal(again.repositories.filter((r) => r.manifests > 0).length, 0);
      }
    });
  }

  it("plans nested indexes parents first, and a tag anywhere in a chain keeps what it needs", () => {
    const node = (digest: string, extra: object = {}) =>
      ({
        digest,
        stamp: "0000000000001.000000.a",
        size: 1,
        tagged: false,
        children: [],
        ...extra,
      }) as unknown as ManifestNode;
    const plan = planRetention(
      [
        node("sha256:c", {}),
        node("sha256:b", { children: ["sha256:c"] }),
        node("sha256:a", { children: ["sha256:b"] }),
        node("sha256:k", { tagged: true, children: ["sha256:m"] }),
        node("sha256:m", {}),
        node("sha256:s", { subject: "sha256:k" }),
      ],
      "9",
    );
    assert.deepEqual(
      plan.expired.map((n) => n.digest),
      ["sha256:a", "sha256:b", "sha256:c"],
    );
    assert.equal(plan.kept, 3);
  });
});
