// Property: three replicas fed the same records in random orders, with duplicates and
// with gaps filled late, then relaying their own change logs to each other as the feeds
// do (through the wire format and the real apply path), end in the same state: the same
// state digest, tags, manifests and blob links. Every record kind takes part.
// Replay a failure with MERGE_SEED=<seed printed in the failure>.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { Digest } from "../oci/digest.ts";
import { mediaTypes } from "../oci/media-types.ts";
import { formatStamp } from "../registry/hybrid-clock.ts";
import {
  openTestRegistry,
  type RegistryFixture,
  TestContent,
} from "../registry/registry-test-fixture.ts";
import type { ReplicatedChange } from "../registry/replicated-change.ts";
import { toChange, toWire } from "./wire-format.ts";

const ciSeed = 20261201;
const seed = Number(
  process.env.MERGE_SEED ?? (process.env.CI ? ciSeed : Date.now() % 2_147_483_647),
);
const repository = "r";
const tags = ["x", "y"];
const base = Date.now() - 3_600_000;

/**
 * The content every record may name: six blobs, three images and an index of two. Blobs 4
 * and 5 belong to no manifest, so their links change only by link and unlink records.
 */
function makeContent() {
  const content = new TestContent();
  const blobs = [0, 1, 2, 3, 4, 5].map((i) => content.addBlob(Buffer.from(`blob ${i}`)));
  const descriptor = (mediaType: string, digest: Digest) => ({ mediaType, digest, size: 6 });
  const manifests: Digest[] = [0, 1, 2].map((i) =>
    content.addManifest(
      mediaTypes.ociManifest,
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: mediaTypes.ociManifest,
          config: descriptor("application/vnd.oci.image.config.v1+json", blobs[i] as Digest),
          layers: [descriptor("application/vnd.oci.image.layer.v1.tar", blobs[3] as Digest)],
        }),
      ),
    ),
  );
  const index = content.addManifest(
    mediaTypes.ociIndex,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: mediaTypes.ociIndex,
        manifests: manifests
          .slice(0, 2)
          .map((d) => ({ mediaType: mediaTypes.ociManifest, digest: d, size: 1 })),
      }),
    ),
  );
  return { content, blobs, manifests: [...manifests, index] };
}

type Op =
  | { op: "link" | "unlink"; blob: number }
  | { op: "put" | "delete"; manifest: number }
  | { op: "tag"; tag: number; manifest: number }
  | { op: "untag"; tag: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constantFrom("link" as const, "unlink" as const), blob: fc.nat(5) }),
  fc.record({ op: fc.constantFrom("put" as const, "delete" as const), manifest: fc.nat(3) }),
  fc.record({ op: fc.constant("tag" as const), tag: fc.nat(1), manifest: fc.nat(3) }),
  fc.record({ op: fc.constant("untag" as const), tag: fc.nat(1) }),
);

const recordArb = fc.record({
  op: opArb,
  ms: fc.nat(40),
  origin: fc.constantFrom("a", "b", "c"),
});

function toRecord(
  spec: { op: Op; ms: number; origin: string },
  index: number,
  world: ReturnType<typeof makeContent>,
): ReplicatedChange {
  // The index as counter keeps every stamp unique, as a real clock does.
  const stamp = formatStamp(base + spec.ms, index, spec.origin);
  const { op } = spec;
  switch (op.op) {
    case "link":
    case "unlink":
      return {
        kind: op.op === "link" ? "blob-link" : "blob-unlink",
        repository,
        digest: world.blobs[op.blob] as Digest,
        stamp,
      };
    case "put": {
      const digest = world.manifests[op.manifest] as Digest;
      const stored = world.content.manifests.get(digest);
      if (!stored) throw new Error("no such manifest");
      return { kind: "manifest-put", repository, digest, stamp, ...stored };
    }
    case "delete":
      return {
        kind: "manifest-delete",
        repository,
        digest: world.manifests[op.manifest] as Digest,
        stamp,
      };
    case "tag":
      return {
        kind: "tag-put",
        repository,
        tag: tags[op.tag] as string,
        digest: world.manifests[op.manifest] as Digest,
        stamp,
      };
    case "untag":
      return { kind: "tag-delete", repository, tag: tags[op.tag] as string, stamp };
  }
}

/** Relays every replica's change log to every other until a round brings nothing new. */
async function relayUntilQuiet(
  replicas: readonly RegistryFixture[],
  content: TestContent,
): Promise<void> {
  const checkpoints = new Map<string, number>();
  for (let round = 0; round < 30; round += 1) {
    let moved = false;
    for (const [i, from] of replicas.entries()) {
      for (const [j, to] of replicas.entries()) {
        if (i === j) continue;
        const key = `${i}->${j}`;
        const records = await from.metadata.changesSince(checkpoints.get(key) ?? 0, 10_000);
        for (const record of records) {
          const manifest =
            record.kind === "manifest-put" && record.digest
              ? await from.metadata.getManifest(record.repository, record.digest)
              : undefined;
          const change = toChange(JSON.parse(JSON.stringify(toWire(record, manifest))));
          if (change) await to.registry.remote.apply(change, content.fetcherFor(to.blobs));
          checkpoints.set(key, record.seq);
          moved = true;
        }
      }
    }
    if (!moved) return;
  }
  assert.fail("the replicas kept relaying records after 30 rounds");
}

async function visibleState(fixture: RegistryFixture, world: ReturnType<typeof makeContent>) {
  const { metadata } = fixture;
  return {
    digest: await metadata.stateDigest(repository),
    tags: await Promise.all(
      tags.map(async (tag) => (await metadata.getTaggedManifest(repository, tag))?.digest),
    ),
    listed: await metadata.listTags(repository, {}),
    manifests: await metadata.missingManifests(repository, world.manifests),
    blobs: await metadata.missingBlobs(repository, world.blobs),
    export: await metadata.exportRepository(repository),
  };
}

describe(`merge convergence (seed ${seed})`, () => {
  it("replicas fed the same records in any order end in the same state", async () => {
    const world = makeContent();
    const deliveryArb = fc.array(fc.nat(1_000), { maxLength: 60 });
    await fc.assert(
      fc.asyncProperty(
        fc.array(recordArb, { minLength: 1, maxLength: 24 }),
        fc.tuple(deliveryArb, deliveryArb, deliveryArb),
        async (specs, deliveries) => {
          const records = specs.map((spec, i) => toRecord(spec, i, world));
          const replicas = await Promise.all(["a", "b", "c"].map((id) => openTestRegistry(id)));
          try {
            for (const [k, replica] of replicas.entries()) {
              const fetcher = world.content.fetcherFor(replica.blobs);
              // A random prefix with duplicates and gaps, then every record (the gaps
              // filled late, some records a second time).
              const order = [
                ...(deliveries[k] ?? []).map((n) => n % records.length),
                ...records.map((_, i) => (i * (k + 2)) % records.length),
                ...records.keys(),
              ];
              for (const index of order) {
                await replica.registry.remote.apply(records[index] as ReplicatedChange, fetcher);
              }
            }
            await relayUntilQuiet(replicas, world.content);
            const [first, ...others] = await Promise.all(
              replicas.map((replica) => visibleState(replica, world)),
            );
            for (const other of others) assert.deepEqual(other, first);
            // A tag is listed exactly when it resolves.
            const resolving = tags.filter((_, i) => first?.tags[i] !== undefined);
            assert.deepEqual(first?.listed ?? [], resolving);
            // A free blob is linked exactly when its newest record links it: an older link
            // never revives a newer unlink.
            for (const blob of [4, 5]) {
              const digest = world.blobs[blob] as Digest;
              const newest = records
                .filter(
                  (r) =>
                    (r.kind === "blob-link" || r.kind === "blob-unlink") && r.digest === digest,
                )
                .sort((p, q) => (p.stamp < q.stamp ? 1 : -1))[0];
              assert.equal(
                !first?.blobs.includes(digest),
                newest?.kind === "blob-link",
                `blob ${blob} after ${newest?.kind ?? "no record"}`,
              );
            }
          } finally {
            await Promise.all(replicas.map((replica) => replica.cleanup()));
          }
        },
      ),
      { seed, numRuns: 40, endOnFailure: true },
    );
  });
});
