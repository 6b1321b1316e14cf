// The behaviour every metadata-store driver must have. A driver's test file calls
// `runMetadataStoreSuite` with a factory; nothing here knows which driver it tests.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Digest, digestOf } from "../oci/digest.ts";
import { mediaTypes } from "../oci/media-types.ts";
import { withFixture } from "../testing/with-fixture.ts";
import {
  type ChangeRecord,
  controlRepository,
  type ManifestRecord,
  type MetadataStore,
} from "./metadata-store.ts";

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

type Change = (store: MetadataStore) => Promise<unknown>;

/** What clients and peers see of a repository, and its state digest. */
async function visibleState(store: MetadataStore, repository: string) {
  const tags = (await store.listTags(repository, {})) ?? [];
  for (const tag of tags) {
    assert.ok(await store.getTaggedManifest(repository, tag), `listed tag ${tag} resolves`);
  }
  assert.deepEqual(JSON.parse((await store.listTagsJson(repository)) ?? "[]"), tags);
  return {
    tags: await Promise.all(
      tags.map(async (tag) => [tag, (await store.getTaggedManifest(repository, tag))?.digest]),
    ),
    links: (await store.exportRepository(repository)).links,
    linked: await store.getBlobLink(repository, blob("l")),
    digest: await store.stateDigest(repository),
  };
}

function* permutations<T>(items: readonly T[]): Generator<T[]> {
  if (items.length <= 1) {
    yield [...items];
    return;
  }
  for (const [i, item] of items.entries()) {
    const rest = [...items.slice(0, i), ...items.slice(i + 1)];
    for (const tail of permutations(rest)) yield [item, ...tail];
  }
}

export function runMetadataStoreSuite(
  driver: string,
  open: () => Promise<MetadataStoreFixture>,
): void {
  describe(`${driver} metadata store`, () => {
    const withStore = (body: (fixture: MetadataStoreFixture) => Promise<void>) =>
      withFixture(open, body);

    it(
      "keeps a blob link as a register: an older link never revives a newer unlink",
      withStore(async ({ store }) => {
        assert.equal(
          await store.linkBlob({ repository: "a", digest: blob("x"), size: 3, stamp: stamp(1) }),
          true,
        );
        assert.equal(
          await store.linkBlob({ repository: "a", digest: blob("x"), size: 3, stamp: stamp(1) }),
          false,
          "the same link twice changes nothing",
        );
        assert.deepEqual(await store.getBlobLink("a", blob("x")), { size: 3, stamp: stamp(1) });
        assert.equal(await store.getBlobLink("b", blob("x")), undefined);
        assert.deepEqual(await store.missingBlobs("a", [blob("x"), blob("y")]), [blob("y")]);
        assert.equal(await store.unlinkBlob("a", blob("x"), stamp(3)), true);
        assert.equal(await store.getBlobLink("a", blob("x")), undefined);
        assert.equal(await store.blobLinkStamp("a", blob("x")), stamp(3));
        assert.equal(
          await store.linkBlob({ repository: "a", digest: blob("x"), size: 3, stamp: stamp(2) }),
          false,
          "an older link (relayed late) stays deleted",
        );
        assert.equal(await store.getBlobLink("a", blob("x")), undefined);
        assert.equal(await store.unlinkBlob("a", blob("x"), stamp(3)), false, "not newer");
        // An unlink that arrives before its link wins over it all the same.
        assert.equal(await store.unlinkBlob("a", blob("z"), stamp(5)), false);
        await store.linkBlob({ repository: "a", digest: blob("z"), size: 1, stamp: stamp(4) });
        assert.equal(await store.getBlobLink("a", blob("z")), undefined);
        assert.equal(
          await store.linkBlob({ repository: "a", digest: blob("x"), size: 3, stamp: stamp(6) }),
          true,
          "a newer link links again",
        );
        assert.deepEqual(await store.getBlobLink("a", blob("x")), { size: 3, stamp: stamp(6) });
        const kinds = (await store.changesSince(0, 100)).map((c) => c.kind);
        assert.deepEqual(kinds, ["blob-link", "blob-unlink", "blob-unlink", "blob-link"]);
        const exported = await store.exportRepository("a");
        assert.deepEqual(
          exported.links,
          [
            { digest: blob("x"), linked: true, stamp: stamp(6) },
            { digest: blob("z"), linked: false, stamp: stamp(5) },
          ].sort((p, q) => p.digest.localeCompare(q.digest)),
        );
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
        assert.equal(await store.listTagsJson("r/one"), '["A","a","b","c"]');
        assert.equal(await store.listTagsJson("missing"), undefined);
        assert.equal(await store.listTagsJson("r/two"), "[]");
        assert.deepEqual(await store.listRepositories({}), ["r/one", "r/two"]);
        assert.deepEqual(await store.listRepositories({ last: "r/one" }), ["r/two"]);
      }),
    );

    it(
      "pages over visible tags only, from a last that names a hidden tag",
      withStore(async ({ store }) => {
        const kept = manifest("repo", { v: "kept" }, 1);
        const gone = manifest("repo", { v: "gone" }, 2);
        for (const [n, tag] of ["a", "c", "e"].entries()) {
          await store.putManifest({ ...kept, stamp: stamp(10 + n) }, tag);
        }
        for (const [n, tag] of ["b", "d"].entries()) {
          await store.putManifest({ ...gone, stamp: stamp(20 + n) }, tag);
        }
        await store.deleteManifest("repo", gone.digest, stamp(30));
        await store.putManifest({ ...kept, stamp: stamp(31) }, "f");
        await store.deleteTag("repo", "f", stamp(32));
        assert.deepEqual(await store.listTags("repo", {}), ["a", "c", "e"]);
        assert.deepEqual(JSON.parse((await store.listTagsJson("repo")) ?? ""), ["a", "c", "e"]);
        assert.deepEqual(await store.listTags("repo", { limit: 2 }), ["a", "c"]);
        assert.deepEqual(await store.listTags("repo", { last: "b", limit: 1 }), ["c"]);
        assert.deepEqual(await store.listTags("repo", { last: "d" }), ["e"]);
        assert.deepEqual(await store.listTags("repo", { last: "e" }), []);
        assert.deepEqual(await store.listTags("repo", { last: "f" }), []);
        // A newer put of the deleted manifest and newer tag writes bring tags back; "b" and
        // "d" were written before the delete and stay hidden.
        await store.putManifest({ ...gone, stamp: stamp(40) }, "bb");
        assert.deepEqual(await store.listTags("repo", { last: "a", limit: 2 }), ["bb", "c"]);
        assert.equal(await store.getTaggedManifest("repo", "b"), undefined);
        assert.equal((await store.getTaggedManifest("repo", "bb"))?.digest, gone.digest);
        await store.setTag("repo", "d", gone.digest, stamp(41));
        assert.deepEqual(await store.listTags("repo", {}), ["a", "bb", "c", "d", "e"]);
      }),
    );

    it(
      "returns as many entries as a page asks for, past the API's largest page",
      withStore(async ({ store }) => {
        const m = manifest("repo", { v: 1 }, 1);
        await store.putManifest(m);
        const names = Array.from({ length: 10_002 }, (_, i) => `t${String(i).padStart(5, "0")}`);
        await Promise.all(names.map((tag, i) => store.setTag("repo", tag, m.digest, stamp(2 + i))));
        assert.deepEqual(await store.listTags("repo", { limit: 10_001 }), names.slice(0, 10_001));
        await Promise.all(
          names.map((name, i) =>
            store.linkBlob({
              repository: `r/${name}`,
              digest: blob("x"),
              size: 1,
              stamp: stamp(i),
            }),
          ),
        );
        assert.equal((await store.listRepositories({ limit: 10_001 })).length, 10_001);
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
      "keeps the client request of each write on its change records, across a reopen",
      withStore(async ({ store, reopen, another }) => {
        const request = (id: string, method: string) => ({
          id,
          host: "registry.example",
          method,
          useragent: "skopeo/1.9",
        });
        const push = request("push-1", "PUT");
        const m = manifest("repo", { v: 1 }, 1, { request: push });
        const seen: ChangeRecord[] = [];
        const stop = store.onCommit((changes) => seen.push(...changes));
        await store.putManifest(m, "t");
        stop();
        await store.setTag("repo", "u", m.digest, stamp(2), { request: request("tag-2", "PUT") });
        await store.deleteTag("repo", "u", stamp(3), { request: request("del-3", "DELETE") });
        await store.deleteManifest("repo", m.digest, stamp(4), {
          request: request("del-4", "DELETE"),
        });
        await store.deleteTag("repo", "t", stamp(5));
        const expected = [
          ["manifest-put", push],
          ["tag-put", push],
          ["tag-put", request("tag-2", "PUT")],
          ["tag-delete", request("del-3", "DELETE")],
          ["manifest-delete", request("del-4", "DELETE")],
          ["tag-delete", undefined],
        ];
        const requests = (log: ChangeRecord[]) => log.map((c) => [c.kind, c.request]);
        assert.deepEqual(requests(seen), expected.slice(0, 2));
        assert.deepEqual(requests(await store.changesSince(0, 100)), expected);
        // The request is not state: a replica that saw the same records without it agrees.
        const other = await another();
        await other.putManifest(manifest("repo", { v: 1 }, 1), "t");
        await other.setTag("repo", "u", m.digest, stamp(2));
        await other.deleteTag("repo", "u", stamp(3));
        await other.deleteManifest("repo", m.digest, stamp(4));
        await other.deleteTag("repo", "t", stamp(5));
        assert.equal(await other.stateDigest("repo"), await store.stateDigest("repo"));
        await store.close();
        const again = await reopen();
        assert.deepEqual(requests(await again.changesSince(0, 100)), expected);
        await again.close();
      }),
    );

    it(
      "keeps control records as registers, replicated through the change log and the state digest",
      withStore(async ({ store, another }) => {
        const writes = [
          { kind: "user", name: "alice", value: '{"v":1}', stamp: stamp(1) },
          { kind: "user", name: "alice", value: null, stamp: stamp(3) },
          { kind: "user", name: "alice", value: '{"v":2}', stamp: stamp(2) },
          { kind: "token", name: "alice", value: '{"t":1}', stamp: stamp(1) },
        ];
        const applied = [];
        for (const write of writes) applied.push(await store.putControlRecord(write));
        assert.deepEqual(applied, [true, true, false, true], "an older write loses");
        assert.deepEqual(await store.controlRecords("user"), [
          { kind: "user", name: "alice", value: null, stamp: stamp(3) },
        ]);
        assert.equal((await store.controlRecords("token"))[0]?.value, '{"t":1}');
        const log = await store.changesSince(0, 100);
        assert.deepEqual(
          log.map((c) => [c.kind, c.control?.kind, c.control?.name]),
          [
            ["control-put", "user", "alice"],
            ["control-delete", "user", "alice"],
            ["control-put", "token", "alice"],
          ],
        );
        assert.deepEqual(await store.listRepositories({}), [], "not a repository");
        const other = await another();
        for (const write of [...writes].reverse()) await other.putControlRecord(write);
        const digests = await store.stateDigests();
        assert.ok(digests.has(controlRepository));
        assert.deepEqual(await other.stateDigests(), digests);
        assert.equal(await store.stateDigest(controlRepository), digests.get(controlRepository));
        const exported = await store.exportRepository(controlRepository);
        assert.equal(exported.controls?.length, 2);
      }),
    );

    it(
      "commits and tells the other listeners when one listener throws",
      withStore(async ({ store }) => {
        const seen: string[] = [];
        store.onCommit(() => {
          throw new Error("a broken listener");
        });
        store.onCommit((changes) => seen.push(...changes.map((c) => c.kind)));
        await store.linkBlob({ repository: "r", digest: blob("l"), size: 1, stamp: stamp(1) });
        assert.deepEqual(seen, ["blob-link"]);
        assert.ok(await store.getBlobLink("r", blob("l")));
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
      "reaches the same state whatever order the same changes arrive in",
      withStore(async ({ store, another }) => {
        const a = manifest("repo", { v: "a" }, 1);
        const b = manifest("repo", { v: "b" }, 2);
        const link = (n: number) => (s: MetadataStore) =>
          s.linkBlob({ repository: "repo", digest: blob("l"), size: 1, stamp: stamp(n) });
        const unlink = (n: number) => (s: MetadataStore) =>
          s.unlinkBlob("repo", blob("l"), stamp(n));
        const changes: Change[] = [
          link(1),
          (s) => s.putManifest(a, "t"),
          (s) => s.putManifest(b, "t"),
          unlink(4),
          (s) => s.putManifest({ ...a, stamp: stamp(3) }, "u"),
          link(3),
          (s) => s.deleteTag("repo", "u", stamp(4)),
          (s) => s.deleteManifest("repo", b.digest, stamp(5)),
          link(7),
          unlink(6),
          (s) => s.deleteManifest("repo", a.digest, stamp(2)),
        ];
        for (const change of changes) await change(store);
        const expected = await visibleState(store, "repo");
        const other = await another();
        for (const change of [...changes].reverse()) await change(other);
        // Replaying the same changes again changes nothing.
        for (const change of changes) await change(other);
        assert.deepEqual(await visibleState(other, "repo"), expected);
        assert.notEqual(await store.stateDigest("repo"), await store.stateDigest("empty"));
        assert.deepEqual(await other.stateDigests(), await store.stateDigests());
        // Every order of a mix of every kind ends in the same state.
        const mix: Change[] = [
          link(1),
          unlink(2),
          (s) => s.putManifest(a, "t"),
          (s) => s.deleteManifest("repo", a.digest, stamp(2)),
          (s) => s.putManifest({ ...b, stamp: stamp(3) }, "t"),
        ];
        let reference: Awaited<ReturnType<typeof visibleState>> | undefined;
        for (const order of permutations(mix)) {
          const target = await another();
          for (const change of order) await change(target);
          const state = await visibleState(target, "repo");
          reference ??= state;
          assert.deepEqual(state, reference);
          await target.close();
        }
      }),
    );

    it(
      "counts each stored blob and manifest once, however many repositories link it",
      withStore(async ({ store }) => {
        assert.deepEqual(await store.storedBytes(), { blobs: 0, blobBytes: 0, manifestBytes: 0 });
        await store.linkBlob({ repository: "a", digest: blob("x"), size: 3, stamp: stamp(1) });
        await store.linkBlob({ repository: "b", digest: blob("x"), size: 3, stamp: stamp(2) });
        await store.linkBlob({ repository: "b", digest: blob("y"), size: 5, stamp: stamp(3) });
        const m = manifest("a", { v: 1 }, 4);
        await store.putManifest(m, "t");
        const stored = await store.storedBytes();
        assert.equal(stored.blobs, 2);
        assert.equal(stored.blobBytes, 8);
        assert.equal(stored.manifestBytes, m.bytes.length);
        await store.unlinkBlob("b", blob("y"), stamp(9));
        assert.equal((await store.storedBytes()).blobBytes, 3);
      }),
    );

    it(
      "expires only old links that no manifest of their repository references",
      withStore(async ({ store }) => {
        const [used, unused, fresh] = [blob("used"), blob("unused"), blob("fresh")];
        for (const [digest, n] of [
          [used, 1],
          [unused, 2],
          [fresh, 9],
        ] as const) {
          await store.linkBlob({ repository: "repo", digest, size: 5, stamp: stamp(n) });
        }
        const m = manifest("repo", { v: "uses" }, 3, { blobs: [used] });
        await store.putManifest(m, "t");
        assert.equal(await store.referencedByManifest("repo", used), true);
        assert.equal(await store.referencedByManifest("other", used), false);
        const expirable = await store.expirableLinks(stamp(5), undefined, 10);
        assert.deepEqual(
          expirable.map((l) => l.digest),
          [unused],
        );
        assert.equal(
          await store.expirableLinks(stamp(5), expirable[0], 10).then((l) => l.length),
          0,
        );
        // A link written since the collector looked is not expired.
        assert.equal(
          await store.expireBlobLink({ repository: "repo", digest: unused }, stamp(0), stamp(10)),
          false,
        );
        assert.equal(
          await store.expireBlobLink({ repository: "repo", digest: unused }, stamp(2), stamp(10)),
          true,
        );
        assert.equal(await store.getBlobLink("repo", unused), undefined);
        assert.equal(await store.blobLinkStamp("repo", unused), stamp(10));
        // A manifest stored since the collector looked keeps its blob linked.
        await store.putManifest(manifest("repo", { v: "late" }, 11, { blobs: [fresh] }));
        assert.equal(
          await store.expireBlobLink({ repository: "repo", digest: fresh }, stamp(9), stamp(12)),
          false,
        );
        assert.ok(await store.getBlobLink("repo", fresh));
        const kinds = (await store.changesSince(0, 100)).map((c) => c.kind);
        assert.equal(kinds.filter((k) => k === "blob-expire").length, 1);
        assert.deepEqual(
          (await store.exportRepository("repo")).links.find((l) => l.digest === unused),
          {
            digest: unused,
            linked: false,
            stamp: stamp(10),
            expired: true,
          },
        );
      }),
    );

    it(
      "serves a manifest's blob after its link expired, and says which blobs nothing references",
      withStore(async ({ store }) => {
        const [layer, loose, gone] = [blob("layer"), blob("loose"), blob("gone")];
        await store.linkBlob({ repository: "repo", digest: layer, size: 5, stamp: stamp(1) });
        await store.linkBlob({ repository: "repo", digest: loose, size: 5, stamp: stamp(2) });
        await store.linkBlob({ repository: "repo", digest: gone, size: 5, stamp: stamp(3) });
        const m = manifest("repo", { v: 1 }, 4, { blobs: [layer] });
        await store.putManifest(m, "t");
        // A collector's unlink (from a region without the manifest) removes the link, and
        // the manifest still serves the blob; a client's unlink makes it unservable.
        const digestBefore = await store.stateDigest("repo");
        await store.unlinkBlob("repo", layer, stamp(5), { expired: true });
        await store.unlinkBlob("repo", gone, stamp(6));
        assert.deepEqual(await store.missingBlobs("repo", [layer, loose, gone]), [gone]);
        assert.equal(await store.servedByManifest("repo", layer), true);
        assert.notEqual(await store.stateDigest("repo"), digestBefore);
        const kinds = (await store.changesSince(0, 100)).map((c) => c.kind);
        assert.deepEqual(kinds.slice(-2), ["blob-expire", "blob-unlink"]);
        const unknown = blob("never");
        assert.deepEqual(await store.unreferencedBlobs([layer, loose, gone, unknown], stamp(6)), [
          unknown,
        ]);
        assert.deepEqual(await store.unreferencedBlobs([layer, loose, gone, unknown], stamp(7)), [
          gone,
          unknown,
        ]);
        await store.deleteManifest("repo", m.digest, stamp(8));
        assert.deepEqual(await store.unreferencedBlobs([layer], stamp(9)), [layer]);
        assert.deepEqual(await store.missingBlobs("repo", [layer]), [layer]);
        // A manifest whose blob a client unlinked does not serve it.
        const other = manifest("repo", { v: 2 }, 9, { blobs: [gone] });
        await store.putManifest(other);
        assert.equal(await store.servedByManifest("repo", gone), false);
        assert.deepEqual(await store.missingBlobs("repo", [gone]), [gone]);
      }),
    );

    it(
      "describes manifests for retention and expires only untagged ones no index uses",
      withStore(async ({ store }) => {
        const child = manifest("repo", { v: "child" }, 1);
        const loose = manifest("repo", { v: "loose" }, 2);
        const index = manifest("repo", { v: "index" }, 3, {
          mediaType: mediaTypes.ociIndex,
          manifests: [child.digest],
        });
        const referrer = manifest("repo", { v: "sig" }, 4, { subject: loose.digest });
        await store.putManifest(child);
        await store.putManifest(loose);
        await store.putManifest(index, "latest");
        await store.putManifest(referrer);
        const graph = new Map((await store.manifestGraph("repo")).map((n) => [n.digest, n]));
        assert.equal(graph.size, 4);
        assert.deepEqual(graph.get(index.digest)?.children, [child.digest]);
        // A child manifest is not a blob: an index listing it serves no blob of its digest.
        assert.equal(await store.listedByIndex("repo", child.digest), true);
        assert.equal(await store.listedByIndex("repo", loose.digest), false);
        assert.equal(await store.referencedByManifest("repo", child.digest), false);
        assert.deepEqual(await store.missingBlobs("repo", [child.digest]), [child.digest]);
        assert.deepEqual(await store.unreferencedBlobs([child.digest], stamp(0)), [child.digest]);
        assert.equal(graph.get(index.digest)?.tagged, true);
        assert.equal(graph.get(child.digest)?.tagged, false);
        assert.equal(graph.get(referrer.digest)?.subject, loose.digest);
        assert.equal(graph.get(loose.digest)?.size, loose.bytes.length);
        assert.equal(await store.expireManifest("repo", index.digest, stamp(3), stamp(10)), false);
        assert.equal(await store.expireManifest("repo", child.digest, stamp(1), stamp(10)), false);
        assert.equal(await store.expireManifest("repo", loose.digest, stamp(0), stamp(10)), false);
        assert.equal(await store.expireManifest("repo", loose.digest, stamp(2), stamp(10)), true);
        assert.equal(await store.getManifest("repo", loose.digest), undefined);
        const changes = await store.changesSince(0, 100);
        assert.equal(changes.at(-1)?.kind, "manifest-expire");
        assert.equal(await store.manifestExpired("repo", loose.digest), true);
        assert.equal(await store.manifestExpired("repo", child.digest), undefined);
        assert.deepEqual((await store.exportRepository("repo")).tombstones, [
          { digest: loose.digest, stamp: stamp(10), expired: true },
        ]);
        await store.deleteManifest("repo", referrer.digest, stamp(11));
        assert.equal(await store.manifestExpired("repo", referrer.digest), false);
      }),
    );

    it(
      "reports each repository's links, manifests and their bytes",
      withStore(async ({ store }) => {
        await store.linkBlob({ repository: "a", digest: blob("1"), size: 10, stamp: stamp(1) });
        await store.linkBlob({ repository: "a", digest: blob("2"), size: 20, stamp: stamp(2) });
        await store.linkBlob({ repository: "b", digest: blob("1"), size: 10, stamp: stamp(3) });
        const m = manifest("b", { v: 1 }, 4);
        await store.putManifest(m, "t");
        assert.deepEqual(await store.repositoryUsage(), [
          { repository: "a", links: 2, linkedBytes: 30, manifests: 0, manifestBytes: 0 },
          {
            repository: "b",
            links: 1,
            linkedBytes: 10,
            manifests: 1,
            manifestBytes: m.bytes.length,
          },
        ]);
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
