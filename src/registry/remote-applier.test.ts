import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Digest } from "../oci/digest.ts";
import { mediaTypes } from "../oci/media-types.ts";
import { withFixture } from "../testing/with-fixture.ts";
import { formatStamp } from "./hybrid-clock.ts";
import { openTestRegistry, type RegistryFixture, TestContent } from "./registry-test-fixture.ts";
import { ContentUnavailableError, StampTooFarAheadError } from "./replicated-change.ts";

const now = 1_800_000_000_000;
const stamp = (n: number, replica = "peer") => formatStamp(now - 10_000 + n, 0, replica);

function image(content: TestContent, label: string): { digest: Digest; bytes: Buffer } {
  const config = Buffer.from(`{"label":"${label}"}`);
  const layer = Buffer.from(`layer of ${label}`);
  const descriptor = (mediaType: string, bytes: Buffer) => ({
    mediaType,
    size: bytes.length,
    digest: content.addBlob(bytes),
  });
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: mediaTypes.ociManifest,
      config: descriptor("application/vnd.oci.image.config.v1+json", config),
      layers: [descriptor("application/vnd.oci.image.layer.v1.tar", layer)],
    }),
  );
  return { digest: content.addManifest(mediaTypes.ociManifest, bytes), bytes };
}

describe("remote applier", () => {
  const withRegistry = (body: (fixture: RegistryFixture) => Promise<void>) =>
    withFixture(() => openTestRegistry("local", { now: () => now }), body);

  it(
    "stores a manifest only after fetching its blobs, and a tag only with its manifest",
    withRegistry(async ({ registry, metadata, blobs }) => {
      const content = new TestContent();
      const { digest } = image(content, "a");
      const fetcher = content.fetcherFor(blobs);
      // The tag arrives first: its manifest (and that manifest's blobs) are fetched.
      await registry.remote.apply(
        { kind: "tag-put", repository: "r", tag: "v1", digest, stamp: stamp(2) },
        fetcher,
      );
      assert.equal((await metadata.getTaggedManifest("r", "v1"))?.digest, digest);
      assert.equal(content.asked.filter((a) => a.startsWith("blob")).length, 2);
      assert.deepEqual(await metadata.missingBlobs("r", [...content.blobs.keys()]), []);
      for (const blob of content.blobs.keys()) assert.ok(await blobs.stat(blob));
    }),
  );

  it(
    "says when a tag write lost to a newer write of the tag to another manifest",
    withRegistry(async ({ registry, metadata, blobs }) => {
      const content = new TestContent();
      const older = image(content, "older");
      const newer = image(content, "newer");
      const fetcher = content.fetcherFor(blobs);
      const put = (digest: Digest, n: number) =>
        registry.remote.apply(
          { kind: "tag-put", repository: "r", tag: "v1", digest, stamp: stamp(n, `r${n}`) },
          fetcher,
        );
      assert.equal(await put(newer.digest, 5), "applied");
      assert.equal(await put(older.digest, 3), "tag-conflict", "two regions wrote the tag");
      assert.equal(await put(newer.digest, 4), "applied", "the same manifest is no conflict");
      assert.equal((await metadata.getTaggedManifest("r", "v1"))?.digest, newer.digest);
    }),
  );

  it(
    "refuses a manifest whose content cannot be had, and stores nothing of it",
    withRegistry(async ({ registry, metadata, blobs }) => {
      const content = new TestContent();
      const { digest, bytes } = image(content, "b");
      content.blobs.clear();
      const put = (body: Buffer) =>
        registry.remote.apply(
          {
            kind: "manifest-put",
            repository: "r",
            digest,
            stamp: stamp(1),
            mediaType: mediaTypes.ociManifest,
            bytes: body,
          },
          content.fetcherFor(blobs),
        );
      await assert.rejects(put(bytes), ContentUnavailableError);
      assert.equal(await metadata.getManifest("r", digest), undefined);
      await assert.rejects(put(Buffer.from("{}")), /do not match the digest/);
    }),
  );

  it(
    "does not fetch a blob for a link older than the register's unlink",
    withRegistry(async ({ registry, metadata, blobs }) => {
      const content = new TestContent();
      const digest = content.addBlob(Buffer.from("deleted layer"));
      const fetcher = content.fetcherFor(blobs);
      await registry.remote.apply(
        { kind: "blob-unlink", repository: "r", digest, stamp: stamp(5) },
        fetcher,
      );
      await registry.remote.apply(
        { kind: "blob-link", repository: "r", digest, stamp: stamp(4) },
        fetcher,
      );
      assert.deepEqual(content.asked, []);
      assert.equal(await metadata.getBlobLink("r", digest), undefined);
      await registry.remote.apply(
        { kind: "blob-link", repository: "r", digest, stamp: stamp(6) },
        fetcher,
      );
      assert.equal((await metadata.getBlobLink("r", digest))?.stamp, stamp(6));
    }),
  );

  it(
    "refuses a stamp beyond the allowed clock skew without moving the clock",
    withRegistry(async ({ registry, metadata, blobs }) => {
      const content = new TestContent();
      const digest = content.addBlob(Buffer.from("from the future"));
      const fetcher = content.fetcherFor(blobs);
      const before = registry.clock.next();
      const runaway = formatStamp(now + 61_000, 0, "peer");
      await assert.rejects(
        registry.remote.apply(
          { kind: "blob-link", repository: "r", digest, stamp: runaway },
          fetcher,
        ),
        StampTooFarAheadError,
      );
      assert.equal(await metadata.getBlobLink("r", digest), undefined);
      const after = registry.clock.next();
      assert.ok(after < runaway, `the clock stayed at wall time: ${after}`);
      assert.ok(after > before);
      // Within the skew it is applied, and the clock moves past it as usual.
      const ahead = formatStamp(now + 30_000, 0, "peer");
      await registry.remote.apply(
        { kind: "blob-link", repository: "r", digest, stamp: ahead },
        fetcher,
      );
      assert.ok(await metadata.getBlobLink("r", digest));
      assert.ok(registry.clock.next() > ahead);
    }),
  );
});
