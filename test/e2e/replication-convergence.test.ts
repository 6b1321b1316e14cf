// Multi-region end-to-end tests on one three-region cluster (westus home, eastus,
// westeurope; every replica its own process, peers reaching each other through WAN links
// with 10 ms of round trip): a skopeo push replicates byte for byte, concurrent writes of
// one tag and deletes converge to one answer everywhere, a tag of an image deleted right
// away does not stall a region that hears of it late, the peer API demands the
// replication credential, and `meridian replication list` reports every replica Ready.
// Owns: this file. Helpers: test/support/{cluster,replication-http,oci-layout,skopeo}.ts.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import {
  clusterTest as clusterTestOf,
  startTestCluster,
  type TestCluster,
} from "../support/cluster.ts";
import {
  type BuiltImage,
  type BuiltIndex,
  collectReachableBlobs,
  type Descriptor,
  OciLayoutBuilder,
  readLayoutRef,
} from "../support/oci-layout.ts";
import {
  assertBlobServed,
  deleteReference,
  getManifest,
  makeImage,
  pushImage,
  putImageManifest,
  resolvedDigest,
} from "../support/replication-http.ts";
import { createSkopeo, type Skopeo } from "../support/skopeo.ts";
import { waitFor } from "../support/wait-for.ts";

const execFileAsync = promisify(execFile);
const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const regions = ["westus", "eastus", "westeurope"] as const;
const [west, east, europe] = regions;
const testTimeoutMs = 90_000;

function nth<T>(items: readonly T[], index: number): T {
  const item = items[index];
  if (item === undefined) throw new Error(`no item ${index}`);
  return item;
}

describe("replication across three regions", () => {
  let cluster: TestCluster;
  let workDir = "";
  let sourceDir = "";
  let skopeo: Skopeo;
  let multiLayer: BuiltImage;
  let twoPlatform: BuiltIndex;

  const clusterTest = (name: string, body: () => Promise<void>): void =>
    clusterTestOf(() => cluster, name, body, testTimeoutMs);

  /** Every region answers the same for each reference; returns the answers of the first. */
  const assertSameEverywhere = async (repository: string, references: readonly string[]) => {
    const answers: string[] = [];
    for (const reference of references) {
      const seen = await Promise.all(
        regions.map((region) => resolvedDigest(cluster.url(region), repository, reference)),
      );
      assert.deepEqual(
        seen,
        regions.map(() => seen[0]),
        `${repository}:${reference} in ${regions.join(", ")}`,
      );
      answers.push(seen[0] ?? "");
    }
    return answers;
  };

  before(async () => {
    workDir = await mkdtemp(join(tmpdir(), "meridian-replication-"));
    sourceDir = join(workDir, "source");
    const layout = await OciLayoutBuilder.create(sourceDir);
    multiLayer = await layout.addImage({
      architecture: "amd64",
      os: "linux",
      layerSizes: [1024, 300 * 1024, 3 * 1024 * 1024, 2 * 1024 * 1024],
    });
    twoPlatform = await layout.addIndex([
      { architecture: "amd64", os: "linux", layerSizes: [2048, 64 * 1024] },
      { architecture: "arm64", os: "linux", variant: "v8", layerSizes: [4096, 128 * 1024] },
    ]);
    layout.tag(multiLayer.manifest, "v1");
    layout.tag(twoPlatform.index, "multiarch");
    await layout.finish();
    skopeo = await createSkopeo(join(workDir, "skopeo"));
    // Anti-entropy stays out of the way (one round an hour): the change feeds alone must
    // carry every change, so that a feed that loses one fails these tests.
    cluster = await startTestCluster({ regions, wan: { rttMs: 10 }, antiEntropySeconds: 3600 });
  });

  after(async () => {
    await cluster?.dispose();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  const skopeoCopy = (from: string, to: string, ...flags: string[]) =>
    skopeo.run([
      "copy",
      "--retry-times",
      "0",
      "--src-tls-verify=false",
      "--dest-tls-verify=false",
      "--preserve-digests",
      ...flags,
      from,
      to,
    ]);

  /** Pulls `reference` out of `region` with skopeo and compares every blob with the source. */
  const assertPullsIdentical = async (
    region: string,
    reference: string,
    root: Descriptor,
    blobCount: number,
    ...flags: string[]
  ) => {
    const outDir = join(workDir, `out-${region}-${reference.replace(/[^a-z0-9]/gi, "_")}`);
    const tag = reference.split(":").pop() ?? "latest";
    await skopeoCopy(
      `docker://${cluster.host(region)}/${reference}`,
      `oci:${outDir}:${tag}`,
      ...flags,
    );
    const pulled = await readLayoutRef(outDir, tag);
    assert.equal(pulled.digest, root.digest, `digest of ${reference} pulled from ${region}`);
    const expected = await collectReachableBlobs(sourceDir, root);
    const actual = await collectReachableBlobs(outDir, root);
    assert.equal(expected.size, blobCount, "fixture sanity: reachable blob count");
    assert.deepEqual(
      [...actual.keys()].sort(),
      [...expected.keys()].sort(),
      `blobs from ${region}`,
    );
    for (const [digest, bytes] of expected) {
      assert.ok(actual.get(digest)?.equals(bytes), `blob ${digest} pulled from ${region} differs`);
    }
  };

  clusterTest(
    "an image pushed with skopeo to one region is pullable, byte-identical, in every other region",
    async () => {
      const source = (tag: string) => `oci:${sourceDir}:${tag}`;
      await skopeoCopy(source("v1"), `docker://${cluster.host(west)}/e2e/skopeo:v1`);
      await skopeoCopy(
        source("multiarch"),
        `docker://${cluster.host(west)}/e2e/skopeo:multiarch`,
        "--multi-arch",
        "all",
      );
      const digest = await cluster.waitConverged("e2e/skopeo", regions, 30_000);
      for (const region of regions) {
        assert.equal(await cluster.stateDigest(region, "e2e/skopeo"), digest);
      }
      // Replication, not read-through, brought the content: each region stores every
      // blob itself before any client asks for it.
      const images = [multiLayer, ...twoPlatform.images];
      for (const region of [east, europe]) {
        for (const blob of images.flatMap((image) => [image.config, ...image.layers])) {
          assert.ok(
            await cluster.hasLocalBlob(region, "e2e/skopeo", blob.digest),
            `${blob.digest} is stored in ${region}`,
          );
        }
      }
      for (const region of [east, europe]) {
        // manifest + config + 4 layers; index + 2 × (manifest + config + 2 layers)
        await assertPullsIdentical(region, "e2e/skopeo:v1", multiLayer.manifest, 6);
        await assertPullsIdentical(
          region,
          "e2e/skopeo:multiarch",
          twoPlatform.index,
          9,
          "--multi-arch",
          "all",
        );
        const raw = await getManifest(cluster.url(region), "e2e/skopeo", "v1");
        assert.ok(raw.bytes?.equals(multiLayer.manifestBytes), `manifest bytes in ${region}`);
        for (const blob of [multiLayer.config, ...multiLayer.layers]) {
          await assertBlobServed(cluster.url(region), "e2e/skopeo", blob.digest, blob.size);
        }
      }
    },
  );

  clusterTest(
    "one tag pushed concurrently in two regions ends with the same winner everywhere",
    async () => {
      const repository = "e2e/conflict";
      const tags = ["t0", "t1", "t2", "t3", "t4"];
      const fromWest = tags.map((tag) => makeImage([4096, 8192], `west-${tag}`));
      const fromEast = tags.map((tag) => makeImage([4096, 8192], `east-${tag}`));
      // Blobs first, so that the manifest PUTs of the two regions race each other closely.
      await Promise.all([
        ...fromWest.map((image, i) => pushImage(cluster.url(west), repository, `w${i}`, image)),
        ...fromEast.map((image, i) => pushImage(cluster.url(east), repository, `e${i}`, image)),
      ]);
      await Promise.all(
        tags.flatMap((tag, i) => [
          putImageManifest(cluster.url(west), repository, tag, nth(fromWest, i)),
          putImageManifest(cluster.url(east), repository, tag, nth(fromEast, i)),
        ]),
      );
      const digest = await cluster.waitConverged(repository, regions, 30_000);
      const winners = await assertSameEverywhere(repository, tags);
      for (const [i, winner] of winners.entries()) {
        assert.ok(
          winner === fromWest[i]?.manifest.digest || winner === fromEast[i]?.manifest.digest,
          `${tags[i]} names one of the two pushed images, got ${winner}`,
        );
      }
      // Manifests grow by content: the losing image stays pullable by digest everywhere.
      for (const image of [...fromWest, ...fromEast]) {
        for (const region of regions) {
          assert.equal(
            await resolvedDigest(cluster.url(region), repository, image.manifest.digest),
            image.manifest.digest,
            `${image.manifest.digest} in ${region}`,
          );
        }
      }
      for (const region of regions) {
        assert.equal(await cluster.stateDigest(region, repository), digest, `state of ${region}`);
      }
    },
  );

  clusterTest(
    "a manifest delete and a tag delete in a third region propagate everywhere",
    async () => {
      const repository = "e2e/deletes";
      const doomed = makeImage([2048], "doomed");
      const kept = makeImage([2048], "kept");
      await pushImage(cluster.url(west), repository, "doomed", doomed);
      await pushImage(cluster.url(west), repository, "keep", kept);
      await putImageManifest(cluster.url(west), repository, "drop", kept);
      await cluster.waitConverged(repository, regions, 30_000);
      assert.deepEqual(await assertSameEverywhere(repository, ["doomed", "keep", "drop"]), [
        doomed.manifest.digest,
        kept.manifest.digest,
        kept.manifest.digest,
      ]);

      assert.equal(
        await deleteReference(cluster.url(europe), repository, doomed.manifest.digest),
        202,
      );
      assert.equal(await deleteReference(cluster.url(europe), repository, "drop"), 202);
      const expected = ["404", "404", kept.manifest.digest, "404", kept.manifest.digest];
      const references = ["doomed", doomed.manifest.digest, "keep", "drop", kept.manifest.digest];
      await waitFor(
        async () => {
          for (const region of regions) {
            for (const [i, reference] of references.entries()) {
              if (
                (await resolvedDigest(cluster.url(region), repository, reference)) !== expected[i]
              )
                return false;
            }
          }
          return true;
        },
        "the deletes made in westeurope to reach every region",
        30_000,
        100,
      );
      await cluster.waitConverged(repository, regions, 30_000);
      assert.deepEqual(await assertSameEverywhere(repository, references), expected);
    },
  );

  clusterTest(
    "a delete and a concurrent push of the same tag in two regions resolve the same everywhere",
    async () => {
      const repository = "e2e/delete-race";
      const rounds = 4;
      const first = Array.from({ length: rounds }, (_, i) => makeImage([1024], `first-${i}`));
      const second = Array.from({ length: rounds }, (_, i) => makeImage([1024], `second-${i}`));
      const tags = first.map((_, i) => `race${i}`);
      const retags = first.map((_, i) => `again${i}`);
      for (const [i, image] of first.entries()) {
        await pushImage(cluster.url(west), repository, nth(tags, i), image);
        await putImageManifest(cluster.url(west), repository, nth(retags, i), image);
      }
      for (const [i, image] of second.entries()) {
        await pushImage(cluster.url(east), repository, `staged${i}`, image);
      }
      await cluster.waitConverged(repository, regions, 30_000);

      await Promise.all(
        first.flatMap((image, i) => [
          // A tag delete in westus races a push of another image to that tag in eastus.
          deleteReference(cluster.url(west), repository, nth(tags, i)).then((status) =>
            assert.equal(status, 202),
          ),
          putImageManifest(cluster.url(east), repository, nth(tags, i), nth(second, i)),
          // A manifest delete in westus races a push of that same manifest in eastus.
          deleteReference(cluster.url(west), repository, image.manifest.digest).then((status) =>
            assert.equal(status, 202),
          ),
          putImageManifest(cluster.url(east), repository, nth(retags, i), image),
        ]),
      );
      const digest = await cluster.waitConverged(repository, regions, 30_000, {
        allowEmpty: true,
      });
      const outcomes = await assertSameEverywhere(repository, [
        ...tags,
        ...retags,
        ...first.map((image) => image.manifest.digest),
      ]);
      for (const [i, outcome] of outcomes.slice(0, rounds).entries()) {
        assert.ok(
          outcome === "404" || outcome === second[i]?.manifest.digest,
          `${tags[i]} is deleted or names the image pushed in eastus, got ${outcome}`,
        );
      }
      for (const [i, outcome] of outcomes.slice(rounds, 2 * rounds).entries()) {
        assert.ok(
          outcome === "404" || outcome === first[i]?.manifest.digest,
          `${retags[i]} is deleted or names the re-pushed image, got ${outcome}`,
        );
      }
      for (const region of regions) {
        assert.equal(await cluster.stateDigest(region, repository), digest, `state of ${region}`);
      }
    },
  );

  clusterTest(
    "a tag whose image was deleted before a region heard of either does not hold that region up",
    async () => {
      const repository = "e2e/short-lived";
      const warm = makeImage([1024], "warm");
      await pushImage(cluster.url(west), repository, "warm", warm);
      await cluster.waitConverged(repository, regions, 30_000);
      // westeurope hears of nothing while westus tags an image (eastus gets it), deletes
      // it, and pushes another: both feeds westeurope follows then hold the tag write
      // before the delete, for an image that neither peer holds any more.
      cluster.cluster.cut(europe, west);
      cluster.cluster.cut(europe, east);
      const shortLived = makeImage([2048], "short-lived");
      const next = makeImage([2048], "next");
      try {
        await pushImage(cluster.url(west), repository, "gone", shortLived);
        await cluster.waitConverged(repository, [west, east], 30_000);
        assert.equal(
          await deleteReference(cluster.url(west), repository, shortLived.manifest.digest),
          202,
        );
        await pushImage(cluster.url(west), repository, "next", next);
        await cluster.waitConverged(repository, [west, east], 30_000);
      } finally {
        cluster.cluster.heal(europe, west);
        cluster.cluster.heal(europe, east);
      }
      // No peer can provide the deleted image: a follower that waits for it, retrying,
      // holds up everything after it (here, "next") for its whole retry budget.
      await cluster.waitConverged(repository, regions, 8_000);
      assert.deepEqual(await assertSameEverywhere(repository, ["gone", "next", "warm"]), [
        "404",
        next.manifest.digest,
        warm.manifest.digest,
      ]);
    },
  );

  clusterTest(
    "the peer API answers 401 with an OCI error without the replication secret",
    async () => {
      const feed = `${cluster.url(east)}/_meridian/replication/feed?since=0`;
      const attempts: [string, Record<string, string>][] = [
        ["no credentials", {}],
        ["a wrong bearer", { Authorization: "Bearer not-the-secret-0123456789" }],
        ["the secret with one character changed", { Authorization: `Bearer ${cluster.secret}x` }],
        [
          "the secret as Basic",
          { Authorization: `Basic ${Buffer.from(`peer:${cluster.secret}`).toString("base64")}` },
        ],
      ];
      for (const [what, headers] of attempts) {
        const response = await fetch(feed, { headers });
        const text = await response.text();
        assert.equal(response.status, 401, `${what}: ${text}`);
        assert.match(response.headers.get("content-type") ?? "", /application\/json/, what);
        assert.ok(response.headers.get("www-authenticate"), `${what}: WWW-Authenticate`);
        const body = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
        assert.equal(body.errors?.[0]?.code, "UNAUTHORIZED", `${what}: ${text}`);
        assert.equal(typeof body.errors?.[0]?.message, "string", what);
        assert.doesNotMatch(text, /records/, `${what}: no feed data in the refusal`);
      }
      const response = await fetch(feed, {
        headers: { Authorization: `Bearer ${cluster.secret}` },
      });
      assert.equal(response.status, 200);
      const page = (await response.json()) as { records: unknown[]; head: number };
      assert.ok(Array.isArray(page.records), "a feed page lists records");
      assert.ok(page.records.length > 0 && page.head > 0, "the feed carries the changes so far");
    },
  );

  clusterTest("`meridian replication list --output json` lists every replica Ready", async () => {
    await cluster.waitConverged("e2e/skopeo", regions, 30_000);
    interface Listed {
      name: string;
      region: string;
      endpoint: string;
      home: boolean;
      status: string;
    }
    let listing: Listed[] = [];
    const list = async (): Promise<Listed[]> => {
      const { stdout } = await execFileAsync(
        process.execPath,
        [
          "bin/meridian.js",
          "replication",
          "list",
          "--config",
          cluster.configFile,
          "--output",
          "json",
        ],
        { cwd: repoRoot, timeout: 30_000 },
      );
      return JSON.parse(stdout) as Listed[];
    };
    await waitFor(
      async () => {
        listing = await list();
        return listing.length === regions.length && listing.every((r) => r.status === "Ready");
      },
      "every replica to be listed Ready",
      30_000,
      200,
    ).catch((error: Error) => {
      throw new Error(`${error.message}\nlast listing: ${JSON.stringify(listing, null, 2)}`);
    });
    assert.ok(Array.isArray(listing));
    assert.deepEqual(
      listing.map((r) => r.region).sort(),
      [...regions].sort(),
      "one entry per replica",
    );
    for (const entry of listing) {
      assert.equal(entry.name, entry.region);
      assert.equal(entry.endpoint, cluster.url(entry.region), `endpoint of ${entry.region}`);
      assert.equal(entry.home, entry.region === west, `home flag of ${entry.region}`);
      assert.equal(entry.status, "Ready");
    }
  });
});
