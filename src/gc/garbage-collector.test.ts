// The collector on one region's real stores: what goes, what stays, and why.
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { afterEach, describe, it } from "node:test";
import { digestOf } from "../oci/digest.ts";
import { blobKey } from "../registry/content-locks.ts";
import {
  assertImageIntact,
  collect,
  hasManifest,
  openRegion,
  pushImage,
  relayUntilQuiet,
  type TestRegion,
  testImage,
} from "./gc-test-regions.ts";

const opened: TestRegion[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((region) => region.cleanup()));
});

/** The regions' clock (their stamps and the collector's cutoffs), moved on by tests. */
let offsetMs = 0;
const now = () => Date.now() + offsetMs;
const advance = (ms: number) => {
  offsetMs += ms;
};

async function region(name = "a"): Promise<TestRegion> {
  const made = await openRegion(name, { now });
  opened.push(made);
  return made;
}

describe("garbage collector", () => {
  it("removes only what nothing references, links first and bytes a pass later", async () => {
    const a = await region();
    const shared = Buffer.from("shared layer");
    const kept = testImage("kept config", [shared, Buffer.from("kept layer")]);
    const dropped = testImage("dropped config", [shared, Buffer.from("dropped layer")]);
    await pushImage(a, "app", kept, "v1");
    await pushImage(a, "app", dropped, "v2");
    await a.registry.manifests.delete("app", { kind: "digest", digest: dropped.digest });
    // An upload never used by a manifest, and bytes no link ever named.
    const orphan = Buffer.from("orphan upload");
    await a.registry.uploads.monolithic("app", digestOf(orphan), Readable.from([orphan]), 13);
    const stray = Buffer.from("stray bytes");
    await a.blobs.ingest(digestOf(stray), Readable.from([stray]));

    advance(3_600_000);
    const first = await collect(a, { graceSeconds: 60, now });
    // The dropped image's own config and layer and the orphan lose their links.
    assert.deepEqual(first.repositories, [
      {
        repository: "app",
        manifests: 0,
        manifestBytes: 0,
        links: 3,
        linkBytes: dropped.config.length + 13 + 13,
      },
    ]);
    // Only the stray bytes go now: the unlinks are younger than the grace period.
    assert.deepEqual(first.blobs, { count: 1, bytes: stray.length });
    assert.equal(await a.blobs.stat(digestOf(stray)), undefined);

    advance(120_000);
    const second = await collect(a, { graceSeconds: 60, now });
    assert.equal(second.blobs.count, 3);
    for (const digest of dropped.blobs.slice(0)) {
      const stillUsed = kept.blobs.includes(digest);
      assert.equal((await a.blobs.stat(digest)) !== undefined, stillUsed, digest);
    }
    assert.equal(await a.blobs.stat(digestOf(orphan)), undefined);
    await assertImageIntact(a, "app", kept);
    assert.equal(second.storage.blobs, 3);

    advance(120_000);
    const third = await collect(a, { graceSeconds: 60, now });
    assert.deepEqual([third.blobs.count, third.repositories.length], [0, 0]);
  });

  it("keeps everything younger than the grace period", async () => {
    const a = await region();
    const orphan = Buffer.from("young orphan");
    await a.registry.uploads.monolithic("app", digestOf(orphan), Readable.from([orphan]), 12);
    await a.blobs.ingest(
      digestOf(Buffer.from("young stray")),
      Readable.from([Buffer.from("young stray")]),
    );
    const report = await collect(a, { graceSeconds: 3600 });
    assert.deepEqual([report.blobs.count, report.repositories.length], [0, 0]);
    assert.equal(report.storage.blobs, 2);
  });

  it("counts without deleting in a dry run", async () => {
    const a = await region();
    const orphan = Buffer.from("dry orphan");
    await a.registry.uploads.monolithic("app", digestOf(orphan), Readable.from([orphan]), 10);
    advance(3_600_000);
    const dry = await a.collector.run({ dryRun: true, graceSeconds: 60, policies: [], now });
    assert.equal(dry.repositories[0]?.links, 1);
    assert.ok(await a.metadata.getBlobLink("app", digestOf(orphan)));
  });

  it("skips content a push holds, and takes it once released", async () => {
    const a = await region();
    const stray = Buffer.from("held bytes");
    await a.blobs.ingest(digestOf(stray), Readable.from([stray]));
    const release = await a.registry.locks.hold([blobKey(digestOf(stray))]);
    advance(3_600_000);
    const held = await collect(a, { graceSeconds: 0, now });
    assert.deepEqual([held.blobs.count, held.skipped], [0, 1]);
    release();
    const free = await collect(a, { graceSeconds: 0, now });
    assert.equal(free.blobs.count, 1);
  });

  it("keeps a manifest's blobs servable after their link was unlinked elsewhere", async () => {
    const a = await region();
    const image = testImage("cfg", [Buffer.from("layer")]);
    await pushImage(a, "app", image, "v1");
    // A collector in another region saw the link without this manifest and expired it.
    for (const digest of image.blobs) {
      await a.metadata.unlinkBlob("app", digest, a.registry.clock.next(), { expired: true });
    }
    advance(3_600_000);
    await collect(a, { graceSeconds: 0, now });
    await collect(a, { graceSeconds: 0, now });
    assert.ok(await hasManifest(a, "app", image.digest));
    await assertImageIntact(a, "app", image);
    // A second push of another image using the same layer needs no upload.
    const again = testImage("cfg 2", [Buffer.from("layer")]);
    await pushImage(a, "app", again, "v2");
    await assertImageIntact(a, "app", again);
    // A client's delete of the blob is honoured: the manifests do not serve it any more.
    const layer = again.blobs[1] as (typeof again.blobs)[number];
    await a.registry.blobs.delete("app", layer).catch(() => undefined);
    await a.metadata.unlinkBlob("app", layer, a.registry.clock.next());
    await assert.rejects(a.registry.blobs.stat("app", layer), /BLOB_UNKNOWN|unknown/i);
  });
});

describe("garbage collector racing writes", () => {
  it("cannot take a pushed blob between its upload and its link", async () => {
    const a = await region();
    const layer = Buffer.from("raced layer");
    // A pass runs exactly in the window between the blob's publish and its link, its file
    // already older than the grace period.
    const realLink = a.metadata.linkBlob.bind(a.metadata);
    let raced: Awaited<ReturnType<typeof collect>> | undefined;
    a.metadata.linkBlob = async (link) => {
      advance(10_000);
      raced = await collect(a, { graceSeconds: 0, now });
      return realLink(link);
    };
    await a.registry.uploads.monolithic(
      "app",
      digestOf(layer),
      Readable.from([layer]),
      layer.length,
    );
    assert.deepEqual([raced?.blobs.count, raced?.skipped], [0, 1]);
    assert.ok(await a.blobs.stat(digestOf(layer)));
    assert.ok(await a.metadata.getBlobLink("app", digestOf(layer)));
  });

  it("cannot take a replicated manifest's blobs while it is being applied", async () => {
    const a = await region("a");
    const b = await region("b");
    const image = testImage("remote", [Buffer.from("remote layer")]);
    await pushImage(a, "app", image, "v1");
    // In b, a pass runs right before the replicated manifest is stored: its blobs were
    // fetched and linked, then (as if a collector elsewhere expired them) unlinked.
    const realPut = b.metadata.putManifest.bind(b.metadata);
    let raced: Awaited<ReturnType<typeof collect>> | undefined;
    b.metadata.putManifest = async (manifest, tag) => {
      for (const digest of image.blobs) {
        await b.metadata.unlinkBlob("app", digest, b.registry.clock.next(), { expired: true });
      }
      advance(10_000);
      raced = await collect(b, { graceSeconds: 0, now });
      return realPut(manifest, tag);
    };
    await relayUntilQuiet([a, b]);
    assert.ok(raced && raced.blobs.count === 0 && raced.skipped >= image.blobs.length);
    assert.ok(await hasManifest(b, "app", image.digest));
    await assertImageIntact(b, "app", image);
  });
});
