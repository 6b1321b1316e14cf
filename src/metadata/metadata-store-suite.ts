// The behaviour every metadata-store driver must have. A driver's test file calls
// `runMetadataStoreSuite` with a factory; nothing here knows which driver it tests.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Digest, digestOf } from "../oci/digest.ts";
import { mediaTypes } from "../oci/media-types.ts";
import { withFixture } from "../testing/with-fixture.ts";
import type { ChangeRecord, ManifestRecord, MetadataStore } from "./metadata-store.ts";

export interface MetadataStoreFixture {
  store: MetadataStore;
  /** A new driver instance over the same database, as after a restart. */
  reopen(): Promise<MetadataStore>;
  /** A second, empty store of the same driver (cleaned up with the fixture). */
  another(): Promise<MetadataStore>;
  cleanup(): Promise<void>;
}

const blob = (name: string): Digest => digestOf(Buffer.from(name));
const stamp = (n: number) => `${String(1_700_000_000_000 + n).padStart(13, "0")}.000000.test`;

function manifest(
  repository: string,
  body: object,
  n: number,
  extra: Partial<ManifestRecord> = {},
): ManifestRecord {
  const bytes = Buffer.from(JSON.stringify(body));
  return {
    repository,
    digest: digestOf(bytes),
    mediaType: mediaTypes.ociManifest,
    bytes,
    blobs: [],
    manifests: [],
    stamp: stamp(n),
    ...extra,
  };
}

export function runMetadataStoreSuite(
  driver: string,
  open: () => Promise<MetadataStoreFixture>,
): void {
  describe(`${driver} metadata store`, () => {
    const withStore = (body: (fixture: MetadataStoreFixture) => Promise<void>) =>
      withFixture(open, body);

    it(
      "links blobs idempotently and unlinks them",
      withStore(async ({ store }) => {
        await store.linkBlob({ repository: "a", digest: blob("x"), size: 3, stamp: stamp(1) });
        await store.linkBlob({ repository: "a", digest: blob("x"), size: 3, stamp: stamp(2) });
        assert.deepEqual(await store.getBlobLink("a", blob("x")), { size: 3 });
        assert.equal(await store.getBlobLink("b", blob("x")), undefined);
        assert.deepEqual(await store.missingBlobs("a", [blob("x"), blob("y")]), [blob("y")]);
        assert.equal(await store.unlinkBlob("a", blob("x"), stamp(3)), true);
        assert.equal(await store.unlinkBlob("a", blob("x"), stamp(4)), false);
        const kinds = (await store.changesSince(0, 100)).map((c) => c.kind);
        assert.deepEqual(kinds, ["blob-link", "blob-unlink"]);
      }),
    );

    it(
      "stores a manifest with its tag and resolves both ways",
      withStore(async ({ store }) => {
        const m = manifest("repo", { v: 1 }, 1, { subject: blob("s"), artifactType: "a/b" });
        await store.putManifest(m, "latest");
        const byDigest = await store.getManifest("repo", m.digest);
        assert.equal(byDigest?.bytes.toString(), m.bytes.toString());
        assert.equal(byDigest?.mediaType, mediaTypes.ociManifest);
        assert.equal(byDigest?.subject, blob("s"));
        assert.equal((await store.getTaggedManifest("repo", "latest"))?.digest, m.digest);
        assert.equal(await store.getTaggedManifest("repo", "other"), undefined);
        assert.deepEqual(await store.missingManifests("repo", [m.digest, blob("n")]), [blob("n")]);
      }),
    );

    it(
      "keeps the tag write with the highest stamp, whatever the arrival order",
      withStore(async ({ store }) => {
        const older = manifest("repo", { v: "old" }, 1);
        const newer = manifest("repo", { v: "new" }, 2);
        await store.putManifest(newer, "t");
        await store.putManifest(older, "t");
        assert.equal((await store.getTaggedManifest("repo", "t"))?.digest, newer.digest);
        const newest = manifest("repo", { v: "newest" }, 3);
        await store.putManifest(newest, "t");
        assert.equal((await store.getTaggedManifest("repo", "t"))?.digest, newest.digest);
      }),
    );

    it(
      "deletes a manifest with its tags and keeps a tombstone against older writes",
      withStore(async ({ store }) => {
        const m = manifest("repo", { v: 1 }, 1);
        await store.putManifest(m, "a");
        await store.putManifest({ ...m, stamp: stamp(2) }, "b");
        assert.equal(await store.deleteManifest("repo", m.digest, stamp(5)), true);
        assert.equal(await store.getManifest("repo", m.digest), undefined);
        assert.equal(await store.getTaggedManifest("repo", "a"), undefined);
        assert.deepEqual(await store.listTags("repo", {}), []);
        assert.equal(await store.deleteManifest("repo", m.digest, stamp(6)), false);
        await store.putManifest({ ...m, stamp: stamp(4) }, "c");
        assert.equal(
          await store.getManifest("repo", m.digest),
          undefined,
          "older put stays deleted",
        );
        await store.putManifest({ ...m, stamp: stamp(7) }, "c");
        assert.equal(
          (await store.getTaggedManifest("repo", "c"))?.digest,
          m.digest,
          "newer put revives",
        );
      }),
    );

    it(
      "deletes a single tag",
      withStore(async ({ store }) => {
        const m = manifest("repo", { v: 1 }, 1);
        await store.putManifest(m, "keep");
        await store.putManifest({ ...m, stamp: stamp(2) }, "drop");
        assert.equal(await store.deleteTag("repo", "drop", stamp(3)), true);
        assert.equal(
          await store.deleteTag("repo", "drop", stamp(3)),
          false,
          "not newer: no change",
        );
        assert.deepEqual(await store.listTags("repo", {}), ["keep"]);
        assert.ok(await store.getManifest("repo", m.digest));
      }),
    );

    it(
      "lists tags and repositories in lexical order, page by page",
      withStore(async ({ store }) => {
        const m = manifest("r/one", { v: 1 }, 1);
        for (const tag of ["b", "a", "c", "A"]) await store.putManifest(m, tag);
        await store.linkBlob({ repository: "r/two", digest: blob("x"), size: 1, stamp: stamp(2) });
        assert.deepEqual(await store.listTags("r/one", {}), ["A", "a", "b", "c"]);
        assert.deepEqual(await store.listTags("r/one", { limit: 2 }), ["A", "a"]);
        assert.deepEqual(await store.listTags("r/one", { last: "a", limit: 2 }), ["b", "c"]);
        assert.equal(await store.listTags("missing", {}), undefined);
        assert.deepEqual(await store.listTags("r/two", {}), []);
        assert.deepEqual(await store.listRepositories({}), ["r/one", "r/two"]);
        assert.deepEqual(await store.listRepositories({ last: "r/one" }), ["r/two"]);
      }),
    );

    it(
      "finds referrers of a subject, filtered by artifact type",
      withStore(async ({ store }) => {
        const subject = blob("image");
        const sig = manifest("repo", { sig: 1 }, 1, { subject, artifactType: "application/sig" });
        const sbom = manifest("repo", { sbom: 1 }, 2, {
          subject,
          artifactType: "application/sbom",
          annotations: { k: "v" },
        });
        await store.putManifest(sig);
        await store.putManifest(sbom);
        await store.putManifest(manifest("repo", { other: 1 }, 3));
        const all = await store.listReferrers("repo", subject);
        assert.deepEqual(all.map((r) => r.digest).sort(), [sig.digest, sbom.digest].sort());
        const sboms = await store.listReferrers("repo", subject, "application/sbom");
        assert.deepEqual(sboms, [
          {
            mediaType: mediaTypes.ociManifest,
            digest: sbom.digest,
            size: sbom.bytes.length,
            artifactType: "application/sbom",
            annotations: { k: "v" },
          },
        ]);
        assert.deepEqual(await store.listReferrers("other", subject), []);
      }),
    );

    it(
      "appends one change record per change and announces each commit",
      withStore(async ({ store }) => {
        const seen: ChangeRecord[] = [];
        const stop = store.onCommit((changes) => seen.push(...changes));
        const m = manifest("repo", { v: 1 }, 1);
        await store.putManifest(m, "t");
        await store.putManifest(m, "t");
        stop();
        await store.deleteTag("repo", "t", stamp(2));
        const log = await store.changesSince(0, 100);
        assert.deepEqual(
          log.map((c) => [c.kind, c.tag]),
          [
            ["manifest-put", undefined],
            ["tag-put", "t"],
            ["tag-delete", "t"],
          ],
        );
        assert.deepEqual(seen, log.slice(0, 2));
        assert.deepEqual(await store.changesSince(log[1]?.seq ?? 0, 100), log.slice(2));
        assert.equal(await store.latestStamp(), stamp(2));
      }),
    );

    it(
      "resolves a delete and a concurrent re-push by stamp",
      withStore(async ({ store }) => {
        const m = manifest("repo", { v: 1 }, 1);
        await store.putManifest(m, "old");
        await store.putManifest({ ...m, stamp: stamp(21) }, "new");
        assert.equal(
          await store.deleteManifest("repo", m.digest, stamp(20)),
          false,
          "older delete loses",
        );
        assert.ok(await store.getManifest("repo", m.digest));
        assert.deepEqual(
          await store.listTags("repo", {}),
          ["new"],
          "the delete hides older tag writes",
        );
        assert.equal(
          await store.deleteManifest("repo", m.digest, stamp(22)),
          true,
          "newer delete wins",
        );
        assert.deepEqual(await store.listTags("repo", {}), []);
        const unknown = manifest("repo", { never: "stored" }, 1).digest;
        assert.equal(
          await store.setTag("repo", "x", unknown, stamp(23)),
          false,
          "no tag without its manifest",
        );
        assert.equal(
          await store.setTag("repo", "y", m.digest, stamp(24)),
          true,
          "a deleted manifest is known",
        );
        assert.deepEqual(await store.listTags("repo", {}), [], "but its tag stays hidden");
      }),
    );

    it(
      "reaches the same state digest whatever order the same changes arrive in",
      withStore(async ({ store, another }) => {
        const a = manifest("repo", { v: "a" }, 1);
        const b = manifest("repo", { v: "b" }, 2);
        const changes: ((s: MetadataStore) => Promise<unknown>)[] = [
          (s) => s.putManifest(a, "t"),
          (s) => s.putManifest(b, "t"),
          (s) => s.putManifest({ ...a, stamp: stamp(3) }, "u"),
          (s) => s.deleteTag("repo", "u", stamp(4)),
          (s) => s.deleteManifest("repo", b.digest, stamp(5)),
        ];
        for (const change of changes) await change(store);
        const other = await another();
        for (const change of [...changes].reverse()) await change(other);
        // Replaying the same changes again changes nothing.
        for (const change of changes) await change(other);
        assert.equal(await other.stateDigest("repo"), await store.stateDigest("repo"));
        assert.deepEqual(await other.listTags("repo", {}), await store.listTags("repo", {}));
        assert.notEqual(await store.stateDigest("repo"), await store.stateDigest("empty"));
      }),
    );

    it(
      "keeps everything across a reopen",
      withStore(async ({ store, reopen }) => {
        const m = manifest("repo", { v: 1 }, 1);
        await store.putManifest(m, "t");
        await store.close();
        const again = await reopen();
        assert.equal((await again.getTaggedManifest("repo", "t"))?.digest, m.digest);
        assert.equal((await again.changesSince(0, 10)).length, 2);
        await again.close();
      }),
    );
  });
}
