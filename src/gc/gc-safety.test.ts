// Property: two regions push images that share layers, delete tags and manifests, relay
// their change logs to each other a few records at a time, and collect garbage with a
// grace period of zero or one second, all interleaved (each step runs its operations
// concurrently). After every step, in both regions, every stored manifest reads back
// whole, byte for byte; and an acknowledged push that nobody deleted stays stored in its
// region. A push may fail when a collector took its just-uploaded blobs first (it was
// never acknowledged). Replay a failure with GC_SEED=<seed printed in the failure>.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { type Digest, digestOf } from "../oci/digest.ts";
import { mediaTypes } from "../oci/media-types.ts";
import { OciError } from "../oci/oci-error.ts";
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

const seed = Number(process.env.GC_SEED ?? 20261201);
const repositories = ["app", "lib"];
const pool = [0, 1, 2, 3].map((i) => Buffer.from(`shared layer ${i} `.repeat(50 + i)));
const images: TestImage[] = [0, 1, 2, 3, 4, 5].map((i) =>
  testImage(`config ${i}`, [pool[i % 4] as Buffer, pool[(i + 1) % 4] as Buffer]),
);

/** An index over images 0 and 1: a kept index must keep its children in every region. */
const indexBytes = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: mediaTypes.ociIndex,
    manifests: [0, 1].map((i) => ({
      mediaType: mediaTypes.ociManifest,
      digest: (images[i] as TestImage).digest,
      size: (images[i] as TestImage).manifest.length,
    })),
  }),
);
const indexDigest: Digest = digestOf(indexBytes);

type Op =
  | { op: "push"; region: number; repo: number; image: number; tag: number }
  | { op: "index"; region: number; repo: number }
  | { op: "untag"; region: number; repo: number; tag: number }
  | { op: "delete"; region: number; repo: number; image: number }
  | { op: "gc"; region: number; grace: number }
  | { op: "relay"; region: number; records: number };

const region = fc.nat(1);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant("push" as const),
      region,
      repo: fc.nat(1),
      image: fc.nat(5),
      tag: fc.nat(2),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant("index" as const), region, repo: fc.nat(1) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("untag" as const),
      region,
      repo: fc.nat(1),
      tag: fc.nat(2),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("delete" as const),
      region,
      repo: fc.nat(1),
      image: fc.nat(5),
    }),
  },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("gc" as const), region, grace: fc.nat(1) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant("relay" as const),
      region,
      records: fc.integer({ min: 1, max: 6 }),
    }),
  },
);

class World {
  /** (region, repository, image) of acknowledged pushes. */
  readonly acknowledged = new Set<string>();
  /** (repository, image) ever deleted, in any region. */
  readonly deleted = new Set<string>();

  constructor(
    readonly regions: readonly [TestRegion, TestRegion],
    /** Whether a retention policy (untagged manifests older than the grace period) applies. */
    readonly retention: boolean,
  ) {}

  async run(op: Op): Promise<void> {
    const here = this.regions[op.region] as TestRegion;
    const there = this.regions[1 - op.region] as TestRegion;
    switch (op.op) {
      case "push": {
        const repository = repositories[op.repo] as string;
        try {
          await pushImage(here, repository, images[op.image] as TestImage, `t${op.tag}`);
          this.acknowledged.add(`${op.region} ${repository} ${op.image}`);
        } catch (error) {
          // A collector may take a blob between its upload and the manifest: the push
          // fails and is not acknowledged. Anything else is a bug.
          if (!(error instanceof OciError)) throw error;
        }
        return;
      }
      case "index": {
        const repository = repositories[op.repo] as string;
        try {
          for (const i of [0, 1]) await pushImage(here, repository, images[i] as TestImage);
          await here.registry.manifests.put(
            repository,
            { kind: "tag", tag: "idx" as Tag },
            indexBytes,
            mediaTypes.ociIndex,
          );
        } catch (error) {
          if (!(error instanceof OciError)) throw error;
        }
        return;
      }
      case "untag":
        await here.metadata.deleteTag(
          repositories[op.repo] as string,
          `t${op.tag}`,
          here.registry.clock.next(),
        );
        return;
      case "delete": {
        const repository = repositories[op.repo] as string;
        this.deleted.add(`${repository} ${op.image}`);
        const image = images[op.image] as TestImage;
        await here.metadata.deleteManifest(repository, image.digest, here.registry.clock.next());
        return;
      }
      case "gc":
        await collect(here, { graceSeconds: op.grace });
        return;
      case "relay":
        await relay(there, here, op.records);
        return;
    }
  }

  async check(): Promise<void> {
    for (const [r, region] of this.regions.entries()) {
      for (const repository of repositories) {
        // A client may delete a child of an index (and break it); the collector never does.
        const childDeleted = [0, 1].some((i) => this.deleted.has(`${repository} ${i}`));
        if (!childDeleted && (await hasManifest(region, repository, indexDigest))) {
          for (const child of [0, 1]) {
            assert.ok(
              await hasManifest(region, repository, (images[child] as TestImage).digest),
              `${region.name}: the stored index of ${repository} lost child ${child}`,
            );
          }
        }
        for (const [i, image] of images.entries()) {
          const stored = await hasManifest(region, repository, image.digest);
          if (stored) await assertImageIntact(region, repository, image);
          const ownPush = this.acknowledged.has(`${r} ${repository} ${i}`);
          // Retention may expire an image whose tag moved or went: only without it must an
          // acknowledged image stay.
          if (!this.retention && ownPush && !this.deleted.has(`${repository} ${i}`)) {
            assert.ok(stored, `${region.name}: acknowledged ${repository} image ${i} is gone`);
          }
        }
      }
    }
  }
}

describe(`garbage collection safety (seed ${seed})`, () => {
  it("no stored or acknowledged image loses a blob while pushes, relays and passes interleave", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(opArb, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 14 }),
        fc.boolean(),
        async (steps, retention) => {
          const regions = [await openRegion("a"), await openRegion("b")] as const;
          try {
            const world = new World(regions, retention);
            if (retention) {
              await regions[0].policies.set({ repositories: "**", untaggedDays: 0 });
              await relay(regions[0], regions[1]);
            }
            for (const step of steps) {
              await Promise.all(step.map((op) => world.run(op)));
              await world.check();
            }
            // Everything relayed, then both regions collect twice: still whole.
            await relayUntilQuiet(regions);
            for (const r of regions) await collect(r, { graceSeconds: 0 });
            for (const r of regions) await collect(r, { graceSeconds: 0 });
            await world.check();
          } finally {
            await Promise.all(regions.map((r) => r.cleanup()));
          }
        },
      ),
      { seed, numRuns: 40, endOnFailure: true },
    );
  });
});
