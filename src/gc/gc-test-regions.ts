// In-process regions for the collector's tests: a registry on real stores (SQLite file,
// filesystem blobs) per region, images pushed through the registry's own operations, and a
// relay of change logs between regions through the wire format and the real apply path,
// fetching blob bytes and manifests from the sending region as a follower does.
import assert from "node:assert/strict";
import { Readable, Writable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { type Digest, digestOf } from "../oci/digest.ts";
import { mediaTypes } from "../oci/media-types.ts";
import type { Tag } from "../oci/reference.ts";
import { openTestRegistry, type RegistryFixture } from "../registry/registry-test-fixture.ts";
import { type ContentFetcher, ContentUnavailableError } from "../registry/replicated-change.ts";
import { toChange, toWire } from "../replication/wire-format.ts";
import { GarbageCollector, type GcReport } from "./garbage-collector.ts";
import { RetentionPolicies } from "./retention-policies.ts";

export interface TestRegion extends RegistryFixture {
  name: string;
  collector: GarbageCollector;
  policies: RetentionPolicies;
  /** Each peer's change-log position this region has applied. */
  checkpoints: Map<string, number>;
}

export async function openRegion(
  name: string,
  options: { now?: () => number } = {},
): Promise<TestRegion> {
  const fixture = await openTestRegistry(name, options);
  return {
    ...fixture,
    name,
    collector: new GarbageCollector({
      registry: fixture.registry,
      metadata: fixture.metadata,
      blobs: fixture.blobs,
    }),
    policies: new RetentionPolicies(fixture.registry.control),
    checkpoints: new Map(),
  };
}

/** A pass with the region's policies. */
export async function collect(
  region: TestRegion,
  options: { graceSeconds: number; now?: () => number },
): Promise<GcReport> {
  return region.collector.run({ ...options, policies: await region.policies.list() });
}

export interface TestImage {
  config: Buffer;
  layers: Buffer[];
  manifest: Buffer;
  digest: Digest;
  /** Every blob the manifest references. */
  blobs: Digest[];
}

export function testImage(
  config: string,
  layers: readonly Buffer[],
  extra: object = {},
): TestImage {
  const configBytes = Buffer.from(config);
  const descriptor = (mediaType: string, bytes: Buffer) => ({
    mediaType,
    digest: digestOf(bytes),
    size: bytes.length,
  });
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: mediaTypes.ociManifest,
      config: descriptor("application/vnd.oci.image.config.v1+json", configBytes),
      layers: layers.map((layer) => descriptor("application/vnd.oci.image.layer.v1.tar", layer)),
      ...extra,
    }),
  );
  return {
    config: configBytes,
    layers: [...layers],
    manifest,
    digest: digestOf(manifest),
    blobs: [digestOf(configBytes), ...layers.map((layer) => digestOf(layer))],
  };
}

/** Pushes as a client does: each blob the repository lacks, then the manifest. */
export async function pushImage(
  region: TestRegion,
  repository: string,
  image: TestImage,
  tag?: string,
): Promise<void> {
  const { registry } = region;
  for (const bytes of [image.config, ...image.layers]) {
    const digest = digestOf(bytes);
    if ((await region.metadata.missingBlobs(repository, [digest])).length === 0) continue;
    await registry.uploads.monolithic(repository, digest, Readable.from([bytes]), bytes.length);
  }
  await registry.manifests.put(
    repository,
    tag === undefined ? { kind: "digest", digest: image.digest } : { kind: "tag", tag: tag as Tag },
    image.manifest,
    mediaTypes.ociManifest,
  );
}

/** Every blob of the image reads back byte-identical from the region's repository. */
export async function assertImageIntact(
  region: TestRegion,
  repository: string,
  image: TestImage,
): Promise<void> {
  for (const digest of image.blobs) {
    const read = await region.registry.blobs.read(repository, digest).catch((error: unknown) => {
      assert.fail(`${region.name}: ${repository}@${image.digest} lost blob ${digest}: ${error}`);
    });
    const chunks: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        chunks.push(Buffer.from(chunk));
        done();
      },
    });
    await read.sendTo(sink, () => {});
    assert.equal(digestOf(Buffer.concat(chunks)), digest, `${region.name}: ${digest} bytes`);
  }
}

/** Whether the region stores the manifest (visible by digest). */
export async function hasManifest(
  region: TestRegion,
  repository: string,
  digest: Digest,
): Promise<boolean> {
  return (await region.metadata.getManifest(repository, digest)) !== undefined;
}

/**
 * Applies in `to` up to `limit` records of `from`'s change log after `to`'s checkpoint, as a
 * follower does; a record whose content `from` no longer has is given up (left to
 * anti-entropy), like a follower's after its retries. Returns how many records moved.
 */
export async function relay(from: TestRegion, to: TestRegion, limit = 10_000): Promise<number> {
  const since = to.checkpoints.get(from.name) ?? 0;
  const records = await from.metadata.changesSince(since, limit);
  for (const record of records) {
    const manifest =
      record.kind === "manifest-put" && record.digest
        ? await from.metadata.getManifest(record.repository, record.digest)
        : undefined;
    const value = record.control
      ? ((await from.metadata.controlRecords(record.control.kind)).find(
          (r) => r.name === record.control?.name,
        )?.value ?? undefined)
      : undefined;
    if (record.kind === "manifest-put" && !manifest) {
      to.checkpoints.set(from.name, record.seq);
      continue;
    }
    const change = toChange(JSON.parse(JSON.stringify(toWire(record, manifest, undefined, value))));
    if (change) {
      await to.registry.remote.apply(change, fetcherFrom(from, to)).catch((error: unknown) => {
        if (!(error instanceof ContentUnavailableError)) throw error;
      });
    }
    to.checkpoints.set(from.name, record.seq);
  }
  return records.length;
}

/** Relays both ways until a round moves nothing. */
export async function relayUntilQuiet(regions: readonly TestRegion[]): Promise<void> {
  for (let round = 0; round < 50; round += 1) {
    let moved = 0;
    for (const from of regions) {
      for (const to of regions) if (from !== to) moved += await relay(from, to);
    }
    if (moved === 0) return;
  }
  assert.fail("the regions kept relaying records after 50 rounds");
}

/** Content from the sending region, as its peer API serves it. */
function fetcherFrom(from: TestRegion, to: TestRegion): ContentFetcher {
  return {
    ensureBlob: async (digest) => {
      if (await to.blobs.stat(digest)) return;
      const bytes = await from.blobs
        .read(digest)
        .then((stream) => buffer(stream))
        .catch(() => undefined);
      if (!bytes) throw new ContentUnavailableError(`blob ${digest}`);
      await to.blobs.ingest(digest, Readable.from([bytes]));
    },
    fetchManifest: async (repository, digest) => {
      const stored = await from.metadata.getManifest(repository, digest);
      return stored ? { mediaType: stored.mediaType, bytes: stored.bytes } : undefined;
    },
  };
}
