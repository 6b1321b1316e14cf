// End-to-end: the global endpoint in front of three replica processes. Clients are put in
// different places by their loopback source address (127.0.0.2/3/4 mapped to regions);
// a test-only policy sends every request to a different replica in turn to prove that
// uploads stay sticky, split pushes succeed and reads find content wherever it is.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import type { IncomingMessage } from "node:http";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import pino from "pino";
import type { RoutableReplica } from "../../src/routing/replica-ranking.ts";
import {
  type StartedGlobalEndpoint,
  startGlobalEndpoint,
} from "../../src/routing/start-global-endpoint.ts";
import { startTestCluster, type TestCluster } from "../support/cluster.ts";
import { imageManifest, ociManifestType, randomBlob } from "../support/oci-fixtures.ts";
import { OciLayoutBuilder, readLayoutRef, readVerifiedBlob } from "../support/oci-layout.ts";
import { pushBlob, pushManifest } from "../support/registry-http.ts";
import { createSkopeo, type Skopeo } from "../support/skopeo.ts";
import { httpsGetTrusting, selfSignedCertificate } from "../support/tls.ts";
import { waitFor } from "../support/wait-for.ts";

const regions = ["westus", "eastus", "westeurope"];
const clientAddress: Record<string, string> = {
  westus: "127.0.0.2",
  eastus: "127.0.0.3",
  westeurope: "127.0.0.4",
};

/** GET through the global endpoint from a given source address; resolves status and serving replica. */
function getFrom(
  base: string,
  path: string,
  localAddress: string,
): Promise<{ status: number; replica: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${base}${path}`,
      { localAddress, headers: { Connection: "close" } },
      (res) => {
        res.resume();
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            replica: String(res.headers["x-meridian-replica"]),
          }),
        );
      },
    );
    req.on("error", reject);
    req.end();
  });
}

/** The global endpoint's settings for these tests: clients placed by their source address. */
function globalSettings(mode: "proxy" | "redirect") {
  return {
    listen: "127.0.0.1:0",
    mode,
    ranking: "distance" as const,
    trustedProxies: [],
    locationHeader: "X-Meridian-Client-Location",
    cidrRegions: Object.fromEntries(regions.map((r) => [`${clientAddress[r]}/32`, r])),
    defaultRegion: "westus",
    probeIntervalMs: 200,
    failureThreshold: 1,
    // Loopback addresses have no GeoIP location; src/routing tests cover the lookup.
    geoip: false,
  };
}

async function startGlobal(
  tc: TestCluster,
  options: {
    mode?: "proxy" | "redirect";
    policy?: (c: RoutableReplica[], r: IncomingMessage) => RoutableReplica[];
  } = {},
): Promise<StartedGlobalEndpoint> {
  return startGlobalEndpoint(
    { ...tc.config, globalEndpoint: globalSettings(options.mode ?? "proxy") },
    pino({ level: "silent" }),
    { policy: options.policy },
  );
}

/** Builds an image layout, pushes it through `host` with skopeo and pulls it back out; returns both digests. */
async function skopeoRoundTrip(
  skopeo: Skopeo,
  workDir: string,
  name: string,
  host: string,
  repository: string,
  layerSizes: number[],
): Promise<{
  pushed: string;
  pulled: string;
  outDir: string;
  layers: readonly { digest: string; size: number; mediaType: string }[];
}> {
  const layoutDir = join(workDir, `${name}-layout`);
  const layout = await OciLayoutBuilder.create(layoutDir);
  const image = await layout.addImage({ architecture: "amd64", os: "linux", layerSizes });
  layout.tag(image.manifest, "v1");
  await layout.finish();
  await skopeo.run([
    "copy",
    "--dest-tls-verify=false",
    `oci:${layoutDir}:v1`,
    `docker://${host}/${repository}:v1`,
  ]);
  const outDir = join(workDir, `${name}-out`);
  await skopeo.run([
    "copy",
    "--src-tls-verify=false",
    `docker://${host}/${repository}:v1`,
    `oci:${outDir}:v1`,
  ]);
  return {
    pushed: image.manifest.digest,
    pulled: (await readLayoutRef(outDir, "v1")).digest,
    outDir,
    layers: image.layers,
  };
}

/** Sends each request to the next replica in turn (uploads stay pinned regardless). */
function rotating(): (candidates: RoutableReplica[]) => RoutableReplica[] {
  let turn = 0;
  return (candidates) => {
    turn += 1;
    const shift = turn % candidates.length;
    return [...candidates.slice(shift), ...candidates.slice(0, shift)];
  };
}

describe("global endpoint", () => {
  let tc: TestCluster;
  let workDir: string;
  let skopeo: Skopeo;
  before(async () => {
    tc = await startTestCluster({ regions, antiEntropySeconds: 2 });
    workDir = await mkdtemp(join(tmpdir(), "meridian-global-"));
    skopeo = await createSkopeo(join(workDir, "skopeo"));
  });
  after(async () => {
    await tc?.dispose();
    await rm(workDir, { recursive: true, force: true });
  });

  it("serves each client from its nearest replica and fails over when it stops", async () => {
    const global = await startGlobal(tc);
    try {
      const base = global.endpoint.url;
      for (const region of regions) {
        const answer = await getFrom(base, "/v2/", clientAddress[region] ?? "");
        assert.deepEqual(answer, { status: 200, replica: region });
      }
      await tc.cluster.replica("eastus").process.stop();
      // The very next request already succeeds: reads fail over within the request.
      const during = await getFrom(base, "/v2/", clientAddress.eastus ?? "");
      assert.equal(during.status, 200);
      assert.notEqual(during.replica, "eastus");
      // Canada's nearest is eastus; with eastus gone the next nearest for an eastus client is westus.
      await waitFor(
        async () => (await getFrom(base, "/v2/", clientAddress.eastus ?? "")).replica === "westus",
        "eastus skipped",
      );
      await tc.cluster.startReplica("eastus");
      await waitFor(
        async () => (await getFrom(base, "/v2/", clientAddress.eastus ?? "")).replica === "eastus",
        "eastus readmitted",
        15_000,
      );
    } finally {
      await global.close();
    }
  });

  it("completes a skopeo copy and a chunked upload when every request goes to another replica", async () => {
    const global = await startGlobal(tc, { policy: rotating() });
    try {
      const host = new URL(global.endpoint.url).host;
      const trip = await skopeoRoundTrip(skopeo, workDir, "scatter", host, "scatter/app", [
        2048,
        200 * 1024,
        1024 * 1024,
      ]);
      assert.equal(trip.pulled, trip.pushed);
      for (const layer of trip.layers) await readVerifiedBlob(trip.outDir, layer);

      const blob = randomBlob(300_000);
      const start = await fetch(`${global.endpoint.url}/v2/scatter/chunked/blobs/uploads/`, {
        method: "POST",
      });
      assert.equal(start.status, 202);
      const owner = start.headers.get("x-meridian-replica");
      let location = start.headers.get("location") ?? "";
      assert.match(location, /_meridian_replica=/);
      for (const [from, to] of [
        [0, 100_000],
        [100_000, 300_000],
      ] as const) {
        const patch = await fetch(`${global.endpoint.url}${location}`, {
          method: "PATCH",
          headers: { "Content-Range": `${from}-${to - 1}` },
          body: blob.bytes.subarray(from, to),
        });
        assert.equal(patch.status, 202, await patch.text());
        assert.equal(
          patch.headers.get("x-meridian-replica"),
          owner,
          "the upload stays with its replica",
        );
        location = patch.headers.get("location") ?? location;
      }
      const done = await fetch(`${global.endpoint.url}${location}&digest=${blob.digest}`, {
        method: "PUT",
      });
      assert.equal(done.status, 201, await done.text());
    } finally {
      await global.close();
    }
  });

  it("pulls through another region right after a push, before replication finished", async () => {
    const config = randomBlob(100);
    const layer = randomBlob(64 * 1024);
    for (const blob of [config, layer]) await pushBlob(tc.url("westeurope"), "fresh/app", blob);
    const manifest = imageManifest(config, [layer]);
    const put = await pushManifest(
      tc.url("westeurope"),
      "fresh/app",
      "now",
      manifest,
      ociManifestType,
    );
    assert.equal(put.status, 201);
    const pulled = await fetch(`${tc.url("westus")}/v2/fresh/app/manifests/now`, {
      headers: { Accept: ociManifestType },
    });
    assert.equal(pulled.status, 200);
    assert.equal(await pulled.text(), manifest.json);
    const layerRead = await fetch(`${tc.url("eastus")}/v2/fresh/app/blobs/${layer.digest}`);
    assert.deepEqual(Buffer.from(await layerRead.arrayBuffer()), layer.bytes);
  });

  it("sends no new requests to a replica taken out of routing, which still converges", async () => {
    const global = await startGlobal(tc);
    try {
      const update = await fetch(`${tc.url("westeurope")}/_meridian/status`, {
        method: "PUT",
        body: JSON.stringify({ globalEndpointRouting: false }),
      });
      assert.equal(update.status, 200);
      await waitFor(
        async () =>
          (await getFrom(global.endpoint.url, "/v2/", clientAddress.westeurope ?? "")).replica !==
          "westeurope",
        "westeurope out of routing",
      );
      for (let i = 0; i < 10; i += 1) {
        assert.notEqual(
          (await getFrom(global.endpoint.url, "/v2/", clientAddress.westeurope ?? "")).replica,
          "westeurope",
        );
      }
      const config = randomBlob(50);
      await pushBlob(global.endpoint.url, "maintenance/app", config);
      const manifest = imageManifest(config, []);
      assert.equal(
        (await pushManifest(global.endpoint.url, "maintenance/app", "t", manifest, ociManifestType))
          .status,
        201,
      );
      await tc.waitConverged("maintenance/app", regions, 20_000);
      await fetch(`${tc.url("westeurope")}/_meridian/status`, {
        method: "PUT",
        body: JSON.stringify({ globalEndpointRouting: true }),
      });
    } finally {
      await global.close();
    }
  });

  it("serves HTTPS from certificate files", async () => {
    const { cert, key } = await selfSignedCertificate(workDir);
    const secure = await startGlobalEndpoint(
      {
        ...tc.config,
        tls: { cert, key },
        globalEndpoint: { ...globalSettings("proxy"), geoip: false },
      },
      pino({ level: "silent" }),
    );
    try {
      assert.match(secure.endpoint.url, /^https:\/\//);
      const reply = await httpsGetTrusting(`${secure.endpoint.url}/v2/`, cert);
      const answer = { status: reply.status, replica: String(reply.headers["x-meridian-replica"]) };
      assert.equal(answer.status, 200);
      assert.ok(regions.includes(answer.replica));
    } finally {
      await secure.close();
    }
  });

  it("listens on IPv6 loopback with a URL clients can use", async () => {
    const global = await startGlobalEndpoint(
      { ...tc.config, globalEndpoint: { ...globalSettings("proxy"), listen: "[::1]:0" } },
      pino({ level: "silent" }),
    );
    try {
      assert.match(global.endpoint.url, /^http:\/\/\[::1\]:\d+$/);
      assert.equal((await fetch(`${global.endpoint.url}/v2/`)).status, 200);
    } finally {
      await global.close();
    }
  });

  it("redirects blob reads to the regional endpoint in redirect mode, and skopeo follows", async () => {
    const global = await startGlobal(tc, { mode: "redirect" });
    try {
      const blob = randomBlob(10_000);
      await pushBlob(global.endpoint.url, "redirect/app", blob);
      const response = await fetch(`${global.endpoint.url}/v2/redirect/app/blobs/${blob.digest}`, {
        redirect: "manual",
      });
      assert.equal(response.status, 307);
      assert.match(
        response.headers.get("location") ?? "",
        /^http:\/\/127\.0\.0\.1:\d+\/v2\/redirect\/app\/blobs\//,
      );
      const followed = await fetch(`${global.endpoint.url}/v2/redirect/app/blobs/${blob.digest}`);
      assert.deepEqual(Buffer.from(await followed.arrayBuffer()), blob.bytes);
      const host = new URL(global.endpoint.url).host;
      const trip = await skopeoRoundTrip(skopeo, workDir, "redirect", host, "redirect/img", [4096]);
      assert.equal(trip.pulled, trip.pushed);
    } finally {
      await global.close();
    }
  });
});
