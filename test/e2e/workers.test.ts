// End-to-end: one replica served by two worker processes (`--workers 2`) over one data
// folder. skopeo pushes and pulls through it; a chunked upload whose requests each come
// on a new connection (so the kernel hands them to both workers in turn) completes; both
// workers served requests; the control plane answers from either (the other forwards to
// the leader); /metrics counts every worker; a worker killed with SIGKILL is replaced.
// Then two regions each run as two workers: a push in one is pulled from the other,
// which proves the feed long-poll wakes whichever worker serves it.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { clusterTest, startTestCluster, type TestCluster } from "../support/cluster.ts";
import { type MeridianProcess, startMeridian } from "../support/meridian-process.ts";
import { randomBlob } from "../support/oci-fixtures.ts";
import { type BuiltImage, OciLayoutBuilder } from "../support/oci-layout.ts";
import { createSkopeo, type Skopeo } from "../support/skopeo.ts";
import { waitFor } from "../support/wait-for.ts";
import { pushImage } from "../support/webhook-fixtures.ts";

/** One request on a connection of its own: the cluster's round robin then spreads them. */
function fresh(
  base: string,
  method: string,
  path: string,
  body?: Buffer,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, base), { method, agent: false, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** A process's resident memory, as the kernel counts it. */
async function residentBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024;
}

/** The pids that logged a served request. */
function servingPids(output: string): Set<number> {
  const pids = new Set<number>();
  for (const line of output.split("\n")) {
    if (!line.includes('"msg":"request"')) continue;
    const pid = /"pid":(\d+)/.exec(line)?.[1];
    if (pid) pids.add(Number(pid));
  }
  return pids;
}

describe("a replica served by two workers", () => {
  let server: MeridianProcess;
  let workDir: string;
  let skopeo: Skopeo;
  let image: BuiltImage;
  let layoutDir: string;

  before(async () => {
    workDir = await mkdtemp(join(tmpdir(), "meridian-workers-"));
    layoutDir = join(workDir, "layout");
    const layout = await OciLayoutBuilder.create(layoutDir);
    image = await layout.addImage({
      architecture: "amd64",
      os: "linux",
      layerSizes: [2048, 2 * 1024 * 1024],
    });
    layout.tag(image.manifest, "v1");
    await layout.finish();
    skopeo = await createSkopeo(join(workDir, "skopeo"));
    server = await startMeridian({
      args: ["--workers", "2"],
      env: { MERIDIAN_LOG_LEVEL: "debug" },
    });
  });

  after(async () => {
    await server?.dispose();
    await rm(workDir, { recursive: true, force: true });
  });

  it("takes a skopeo push and serves the same image back", async () => {
    const target = `docker://${server.host}/workers/app:v1`;
    await skopeo.run(["copy", "--dest-tls-verify=false", `oci:${layoutDir}:v1`, target]);
    const out = join(workDir, "pulled");
    await skopeo.run(["copy", "--src-tls-verify=false", target, `dir:${out}`]);
    const { stdout } = await skopeo.run(["inspect", "--tls-verify=false", "--raw", target]);
    assert.equal(stdout, image.manifestBytes.toString());
  });

  it("finishes a chunked upload whose requests reach different workers", async () => {
    const blob = randomBlob(3 * 64 * 1024 + 17);
    const started = await fresh(server.url, "POST", "/v2/workers/chunks/blobs/uploads/");
    assert.equal(started.status, 202);
    let location = String(started.headers.location);
    const step = 64 * 1024;
    for (let offset = 0; offset < blob.bytes.length; offset += step) {
      const chunk = blob.bytes.subarray(offset, offset + step);
      const patched = await fresh(server.url, "PATCH", location, chunk, {
        "Content-Type": "application/octet-stream",
        "Content-Range": `${offset}-${offset + chunk.length - 1}`,
      });
      assert.equal(patched.status, 202, patched.body.toString());
      location = String(patched.headers.location);
    }
    const separator = location.includes("?") ? "&" : "?";
    const put = await fresh(server.url, "PUT", `${location}${separator}digest=${blob.digest}`);
    assert.equal(put.status, 201, put.body.toString());
    const got = await fresh(server.url, "GET", `/v2/workers/chunks/blobs/${blob.digest}`);
    assert.deepEqual(got.body, blob.bytes);
    await waitFor(
      () => servingPids(server.recentOutput()).size >= 2,
      "requests served by both workers",
    );
  });

  it("answers the control plane and metrics from either worker", async () => {
    for (let i = 0; i < 6; i += 1) {
      const status = await fresh(server.url, "GET", "/_meridian/status");
      assert.equal(status.status, 200, status.body.toString());
      assert.equal(JSON.parse(status.body.toString()).status, "Ready");
    }
    // Every worker's counters in one scrape: the memory of both workers, summed.
    const metrics = (await fresh(server.url, "GET", "/metrics")).body.toString();
    const rss = Number(/^process_resident_memory_bytes (\d+)/m.exec(metrics)?.[1]);
    const workers = [...servingPids(server.recentOutput())];
    const each = await Promise.all(workers.map(residentBytes));
    assert.ok(rss > 1.5 * Math.max(...each), `${rss} sums the workers' ${each}`);
  });

  it("replaces a worker killed with SIGKILL", async () => {
    const before = servingPids(server.recentOutput());
    const victim = [...before][0];
    assert.ok(victim, "a worker pid");
    process.kill(victim, "SIGKILL");
    await waitFor(
      async () => {
        await fresh(server.url, "GET", "/v2/");
        const now = servingPids(server.recentOutput());
        return [...now].some((pid) => !before.has(pid));
      },
      "a new worker serving requests",
      20_000,
      50,
    );
    const blob = await fresh(server.url, "HEAD", `/v2/workers/app/manifests/v1`, undefined, {
      Accept: "application/vnd.oci.image.manifest.v1+json",
    });
    assert.equal(blob.status, 200);
  });
});

describe("two regions, each served by two workers", () => {
  let cluster: TestCluster;

  before(async () => {
    cluster = await startTestCluster({
      regions: ["westus", "eastus"],
      wan: { rttMs: 10 },
      env: { MERIDIAN_WORKERS: "2" },
    });
  });

  after(async () => {
    await cluster?.dispose();
  });

  clusterTest(
    () => cluster,
    "an image pushed in one region is pulled from the other",
    async () => {
      const pushed = await pushImage(cluster.url("westus"), "geo/workers", "v1");
      await waitFor(
        async () =>
          (
            await fetch(`${cluster.url("eastus")}/v2/geo/workers/manifests/v1`, {
              method: "HEAD",
              headers: { Accept: "application/vnd.oci.image.manifest.v1+json" },
            })
          ).headers.get("docker-content-digest") === pushed.digest,
        "the image in eastus",
        30_000,
        20,
      );
      for (const digest of pushed.blobs) {
        assert.ok(await cluster.hasLocalBlob("eastus", "geo/workers", digest), digest);
      }
      await cluster.waitConverged("geo/workers");
    },
  );
});
