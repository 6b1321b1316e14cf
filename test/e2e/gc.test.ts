// End-to-end garbage collection in two regions (real replicas, WAN links, skopeo): only
// unreferenced content goes and every kept image pulls byte-identical in every region;
// retention expires untagged manifests everywhere and keeps tagged ones and the children
// of kept indexes; a manifest whose layers are still crossing a slow link survives the
// receiving region's passes and becomes pullable there. Driven through the CLI.
// Owns: this file. Helpers: test/support/{cluster,oci-layout,skopeo,replication-http}.ts.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe } from "node:test";
import { fileURLToPath } from "node:url";
import { clusterTest, startTestCluster, type TestCluster } from "../support/cluster.ts";
import { randomBlob } from "../support/oci-fixtures.ts";
import {
  type BuiltImage,
  type BuiltIndex,
  collectReachableBlobs,
  type Descriptor,
  OciLayoutBuilder,
  readLayoutRef,
} from "../support/oci-layout.ts";
import { pushBlob } from "../support/registry-http.ts";
import { getManifest, makeImage, pushImage } from "../support/replication-http.ts";
import { createSkopeo, type Skopeo } from "../support/skopeo.ts";
import { isStored } from "../support/stored-blobs.ts";
import { waitFor } from "../support/wait-for.ts";

const bin = fileURLToPath(new URL("../../bin/meridian.js", import.meta.url));
const west = "westus";
const east = "eastus";
const regions = [west, east];

describe("garbage collection across regions", () => {
  let cluster: TestCluster;
  let skopeo: Skopeo;
  let workDir: string;
  let sourceDir: string;
  let kept: BuiltImage;
  let dropped: BuiltImage;
  let multi: BuiltIndex;

  before(async () => {
    workDir = await mkdtemp(join(tmpdir(), "meridian-gc-"));
    sourceDir = join(workDir, "source");
    const layout = await OciLayoutBuilder.create(sourceDir);
    kept = await layout.addImage({
      architecture: "amd64",
      os: "linux",
      layerSizes: [40_000, 9_000],
    });
    dropped = await layout.addImage({
      architecture: "amd64",
      os: "linux",
      layerSizes: [30_000, 7_000],
    });
    multi = await layout.addIndex([
      { architecture: "amd64", os: "linux", layerSizes: [20_000] },
      { architecture: "arm64", os: "linux", layerSizes: [21_000] },
    ]);
    layout.tag(kept.manifest, "kept");
    layout.tag(dropped.manifest, "dropped");
    layout.tag(multi.index, "multi");
    await layout.finish();
    skopeo = await createSkopeo(join(workDir, "skopeo"));
    cluster = await startTestCluster({
      regions,
      wan: { rttMs: 2 },
      antiEntropySeconds: 3600,
      gc: { graceSeconds: 0, intervalSeconds: 0 },
    });
  });

  after(async () => {
    await cluster?.dispose();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  const meridian = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [bin, ...args],
        {
          cwd: workDir,
          env: { ...process.env, MERIDIAN_CONFIG_DIR: join(workDir, "config") },
          timeout: 60_000,
        },
        (error, stdout, stderr) =>
          resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
      );
    });

  /** `meridian gc` through the west replica (which asks east for its part). */
  const gc = async (...flags: string[]) => {
    const run = await meridian(["gc", "--registry", cluster.url(west), "-o", "json", ...flags]);
    assert.equal(run.code, 0, run.stderr);
    return JSON.parse(run.stdout) as {
      regions: {
        region: string;
        dryRun: boolean;
        repositories: { repository: string; manifests: number; links: number }[];
        blobs: { count: number; bytes: number };
      }[];
    };
  };

  const skopeoCopy = (from: string, to: string) =>
    skopeo.run([
      "copy",
      "--retry-times",
      "0",
      "--src-tls-verify=false",
      "--dest-tls-verify=false",
      "--preserve-digests",
      "--all",
      from,
      to,
    ]);

  /** Whether the region's blob store holds the bytes (its data folder, not the API). */
  const stored = (region: string, digest: string) => isStored(join(cluster.dir, region), digest);

  const assertPullsIdentical = async (region: string, reference: string, root: Descriptor) => {
    const tag = reference.split(":").pop() ?? "latest";
    const outDir = join(workDir, `out-${region}-${reference.replace(/[^a-z0-9]/gi, "_")}`);
    await rm(outDir, { recursive: true, force: true });
    await skopeoCopy(`docker://${cluster.host(region)}/${reference}`, `oci:${outDir}:${tag}`);
    assert.equal((await readLayoutRef(outDir, tag)).digest, root.digest);
    const expected = await collectReachableBlobs(sourceDir, root);
    const actual = await collectReachableBlobs(outDir, root);
    assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort());
    for (const [digest, bytes] of expected) {
      assert.ok(actual.get(digest)?.equals(bytes), `${digest} from ${region} differs`);
    }
  };

  clusterTest(
    () => cluster,
    "only unreferenced content goes, and kept images pull byte-identical in every region",
    async () => {
      const repo = "e2e/gc";
      for (const tag of ["kept", "dropped", "multi"]) {
        await skopeoCopy(
          `oci:${sourceDir}:${tag}`,
          `docker://${cluster.host(west)}/${repo}:${tag}`,
        );
      }
      // An upload no manifest ever used, in the other region.
      const orphan = randomBlob(5_000);
      await pushBlob(cluster.url(east), repo, orphan);
      await cluster.waitConverged(repo, regions, 30_000);
      await skopeo.run([
        "delete",
        "--tls-verify=false",
        `docker://${cluster.host(west)}/${repo}@${dropped.manifest.digest}`,
      ]);
      await cluster.waitConverged(repo, regions, 30_000);
      await cluster.waitQuiescent(30_000);
      const droppedBlobs = [dropped.config.digest, ...dropped.layers.map((l) => l.digest)];

      const dry = await gc("--dry-run");
      assert.deepEqual(dry.regions.map((r) => r.region).sort(), [east, west]);
      for (const report of dry.regions) {
        assert.ok(report.dryRun);
        // The dropped image's config and layers, and the orphan: links no manifest uses.
        assert.deepEqual(
          report.repositories.map((r) => [r.repository, r.links]),
          [[repo, 4]],
        );
      }
      for (const region of regions) {
        for (const digest of droppedBlobs) assert.ok(await stored(region, digest), "dry run kept");
      }

      // A pass expires the links (the unlinks replicate) and takes the bytes of what they
      // left unreferenced; with no grace period, the bytes may go in the same pass or the
      // next, once the other region's unlinks arrived.
      const first = await gc();
      await cluster.waitQuiescent(30_000);
      const second = await gc();
      const reclaimed = Object.fromEntries(
        regions.map((region) => [
          region,
          [first, second]
            .map((pass) => pass.regions.find((r) => r.region === region)?.blobs.count ?? 0)
            .reduce((a, b) => a + b),
        ]),
      );
      assert.deepEqual(reclaimed, { [west]: 4, [east]: 4 });
      for (const region of regions) {
        for (const digest of [...droppedBlobs, orphan.digest]) {
          assert.equal(await stored(region, digest), false, `${digest} gone from ${region}`);
        }
        for (const digest of [kept.config.digest, ...kept.layers.map((l) => l.digest)]) {
          assert.ok(await stored(region, digest), `${digest} kept in ${region}`);
        }
        await assertPullsIdentical(region, `${repo}:kept`, kept.manifest);
        await assertPullsIdentical(region, `${repo}:multi`, multi.index);
        assert.ok((await cluster.metric(region, "meridian_gc_reclaimed_bytes_total")) > 0);
        assert.ok((await cluster.metric(region, "meridian_gc_last_pass_timestamp_seconds")) > 0);
        assert.ok((await cluster.metric(region, "meridian_storage_bytes", { region })) > 0);
      }
      const third = await gc();
      assert.ok(third.regions.every((r) => r.blobs.count === 0 && r.repositories.length === 0));

      const storage = await meridian(["storage", "--registry", cluster.url(east), "-o", "json"]);
      assert.equal(storage.code, 0, storage.stderr);
      const usage = JSON.parse(storage.stdout) as {
        regions: { region: string; blobs: number; repositories: { repository: string }[] }[];
      };
      assert.deepEqual(usage.regions.map((r) => r.region).sort(), [east, west]);
      for (const region of usage.regions) {
        assert.ok(region.repositories.some((r) => r.repository === repo));
      }
    },
    240_000,
  );

  clusterTest(
    () => cluster,
    "retention expires untagged manifests in every region, keeping tagged ones and index children",
    async () => {
      const repo = "e2e/retention";
      await skopeoCopy(`oci:${sourceDir}:multi`, `docker://${cluster.host(west)}/${repo}:multi`);
      const loose = makeImage([3_000], "loose");
      await pushImage(cluster.url(west), repo, loose.manifest.digest, loose);
      const tagged = makeImage([3_000], "tagged");
      await pushImage(cluster.url(east), repo, "v1", tagged);
      await cluster.waitConverged(repo, regions, 30_000);

      const set = await meridian([
        "retention",
        "set",
        "--repository",
        "e2e/retention*",
        "--untagged-days",
        "0",
        "--registry",
        cluster.url(east),
      ]);
      assert.equal(set.code, 0, set.stderr);
      const shown = await meridian([
        "retention",
        "show",
        "--registry",
        cluster.url(west),
        "-o",
        "json",
      ]);
      assert.equal(shown.code, 0, shown.stderr);
      assert.deepEqual(JSON.parse(shown.stdout), [
        { repositories: "e2e/retention*", untaggedDays: 0 },
      ]);

      await waitFor(
        async () => {
          const report = await gc("--region", east);
          return report.regions[0]?.repositories.some((r) => r.manifests === 1) ?? false;
        },
        "east's pass to expire the loose manifest",
        20_000,
        200,
      );
      await cluster.waitConverged(repo, regions, 30_000);
      for (const region of regions) {
        const gone = await getManifest(cluster.url(region), repo, loose.manifest.digest);
        assert.equal(gone.status, 404, `loose manifest in ${region}`);
        assert.equal((await getManifest(cluster.url(region), repo, "v1")).status, 200);
        for (const child of multi.images) {
          assert.equal(
            (await getManifest(cluster.url(region), repo, child.manifest.digest)).status,
            200,
            `child of the kept index in ${region}`,
          );
        }
        await assertPullsIdentical(region, `${repo}:multi`, multi.index);
      }
      const disabled = await meridian([
        "retention",
        "disable",
        "--repository",
        "e2e/retention*",
        "--registry",
        cluster.url(west),
      ]);
      assert.equal(disabled.code, 0, disabled.stderr);
      const missing = await meridian([
        "retention",
        "disable",
        "--repository",
        "nope/**",
        "--registry",
        cluster.url(west),
      ]);
      assert.notEqual(missing.code, 0);
      assert.match(missing.stderr, /^meridian: .*404/);
    },
    180_000,
  );

  clusterTest(
    () => cluster,
    "layers still crossing a slow link survive the receiving region's passes; the image then pulls",
    async () => {
      const repo = "e2e/gc-slow";
      const MiB = 1024 * 1024;
      const link = cluster.cluster.link(east, west);
      // About 12 MiB at 2 MB/s: six seconds of passes in east while the layers cross.
      link.setBandwidth(2_000_000);
      try {
        const image = makeImage([4 * MiB, 4 * MiB, 4 * MiB], "slow");
        await pushImage(cluster.url(west), repo, "v1", image);
        // Passes straight to east's admin API, back to back, until the image is there.
        const pass = async () => {
          const response = await fetch(`${cluster.url(east)}/_meridian/admin/gc?local=1`, {
            method: "POST",
            body: JSON.stringify({ graceSeconds: 0 }),
          });
          assert.equal(response.status, 200, await response.clone().text());
          return (await response.json()) as { regions: { region: string }[] };
        };
        let passesWhileCrossing = 0;
        await waitFor(
          async () => {
            // Asked through the peer API, which never reads through to west.
            const arrived = (
              await fetch(
                `${cluster.url(east)}/_meridian/replication/manifest?repository=${repo}&reference=v1`,
                { headers: { Authorization: `Bearer ${cluster.secret}` } },
              )
            ).ok;
            if (arrived) return true;
            assert.equal((await pass()).regions[0]?.region, east);
            passesWhileCrossing += 1;
            return false;
          },
          "the image to arrive in east while its passes run",
          90_000,
          50,
        );
        assert.ok(passesWhileCrossing >= 1, "east ran passes while the layers crossed");
        await gc("--region", east, "--grace-seconds", "0");
        for (const blob of [image.config, ...image.layers]) {
          assert.ok(await stored(east, blob.digest), `${blob.digest} survived in east`);
          assert.ok(await stored(west, blob.digest), `${blob.digest} kept in west`);
          for (const region of regions) {
            const response = await fetch(`${cluster.url(region)}/v2/${repo}/blobs/${blob.digest}`);
            const bytes = Buffer.from(await response.arrayBuffer());
            assert.equal(response.status, 200);
            assert.ok(bytes.equals(blob.bytes), `${blob.digest} from ${region}`);
          }
        }
      } finally {
        link.setBandwidth(undefined);
      }
    },
    180_000,
  );
});
