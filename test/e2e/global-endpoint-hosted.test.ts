// End-to-end: the global endpoint hosted inside a replica's process (`globalEndpoint.hostedBy`).
// Clients placed at the host replica are served by it in-process; clients elsewhere are
// proxied to their nearest replica; an upload started through the endpoint stays pinned to
// the replica that owns it, and skopeo pushes and pulls through the endpoint unchanged.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import pino from "pino";
import { startGlobalEndpoint } from "../../src/routing/start-global-endpoint.ts";
import { freePorts, startTestCluster, type TestCluster } from "../support/cluster.ts";
import { randomBlob } from "../support/oci-fixtures.ts";
import { OciLayoutBuilder, readLayoutRef, readVerifiedBlob } from "../support/oci-layout.ts";
import { pushBlob } from "../support/registry-http.ts";
import { sendFrom as send } from "../support/send-from.ts";
import { createSkopeo, type Skopeo } from "../support/skopeo.ts";
import { waitFor } from "../support/wait-for.ts";

const regions = ["westus", "eastus"];
const hostClient = "127.0.0.2";
const eastClient = "127.0.0.3";

describe("global endpoint hosted by a replica", () => {
  let tc: TestCluster;
  let base: string;
  let workDir: string;
  let skopeo: Skopeo;
  before(async () => {
    const [port] = await freePorts(1);
    tc = await startTestCluster({
      regions,
      globalEndpoint: {
        listen: `127.0.0.1:${port}`,
        hostedBy: "westus",
        cidrRegions: { [`${hostClient}/32`]: "westus", [`${eastClient}/32`]: "eastus" },
        defaultRegion: "westus",
        probeIntervalMs: 200,
        failureThreshold: 1,
        geoip: false,
      },
    });
    base = `http://127.0.0.1:${port}`;
    workDir = await mkdtemp(join(tmpdir(), "meridian-hosted-"));
    skopeo = await createSkopeo(join(workDir, "skopeo"));
    // The host's monitor probes eastus before it routes anything there.
    await waitFor(
      async () =>
        (await send(`${base}/v2/`, eastClient)).headers["x-meridian-replica"] === "eastus",
      "the hosted endpoint routes to eastus",
    );
  });
  after(async () => {
    await tc?.dispose();
    await rm(workDir, { recursive: true, force: true });
  });

  it("serves the host's clients itself and proxies the others to their nearest replica", async () => {
    const local = await send(`${base}/v2/`, hostClient);
    assert.equal(local.status, 200);
    assert.equal(local.headers["x-meridian-replica"], "westus");
    assert.equal(local.headers["docker-distribution-api-version"], "registry/2.0");
    const remote = await send(`${base}/v2/`, eastClient);
    assert.equal(remote.status, 200);
    assert.equal(remote.headers["x-meridian-replica"], "eastus");
    // The hosted endpoint counts into its replica's own /metrics.
    assert.ok(
      (await tc.metric("westus", "meridian_global_requests_total", {
        client_region: "eastus",
        replica: "eastus",
      })) >= 1,
    );
    const missing = await send(`${base}/v2/no/such/manifests/latest`, hostClient);
    assert.equal(missing.status, 404);
    assert.equal(JSON.parse(missing.body.toString()).errors[0].code, "MANIFEST_UNKNOWN");
  });

  it("pins an upload served in-process to its replica and completes it in chunks", async () => {
    const blob = randomBlob(200_000);
    const start = await send(`${base}/v2/hosted/chunked/blobs/uploads/`, hostClient, {
      method: "POST",
    });
    assert.equal(start.status, 202);
    let location = start.headers.location ?? "";
    assert.match(location, /_meridian_replica=westus/);
    for (const [from, to] of [
      [0, 80_000],
      [80_000, 200_000],
    ] as const) {
      // From the other client's address: the pin, not the location, decides where it goes.
      const patch = await send(`${base}${location}`, eastClient, {
        method: "PATCH",
        headers: { "Content-Range": `${from}-${to - 1}` },
        body: blob.bytes.subarray(from, to),
      });
      assert.equal(patch.status, 202, patch.body.toString());
      assert.equal(patch.headers["x-meridian-replica"], "westus");
      assert.match(patch.headers.location ?? "", /_meridian_replica=westus/);
      location = patch.headers.location ?? location;
    }
    const done = await send(`${base}${location}&digest=${blob.digest}`, hostClient, {
      method: "PUT",
    });
    assert.equal(done.status, 201, done.body.toString());
    const read = await send(`${base}/v2/hosted/chunked/blobs/${blob.digest}`, hostClient);
    assert.equal(read.status, 200);
    assert.deepEqual(read.body, blob.bytes);
  });

  it("sends a read that the replica in its process fails with a 5xx on to the next one", async () => {
    const blob = randomBlob(50_000);
    await pushBlob(tc.url("eastus"), "hosted/failover", blob);
    // Stands in for a westus replica whose storage fails: every request answers 503.
    const failing = (_req: IncomingMessage, res: ServerResponse) => {
      const body = JSON.stringify({
        errors: [{ code: "UNAVAILABLE", message: "disk", detail: {} }],
      });
      res.setHeader("X-Broken", "yes");
      res.writeHead(503, { "Content-Type": "application/json", "Content-Length": body.length });
      res.end(body);
    };
    const endpoint = await startGlobalEndpoint(
      {
        ...tc.config,
        globalEndpoint: {
          listen: "127.0.0.1:0",
          mode: "proxy",
          ranking: "distance",
          trustedProxies: [],
          locationHeader: "X-Meridian-Client-Location",
          cidrRegions: { [`${hostClient}/32`]: "westus" },
          defaultRegion: "westus",
          probeIntervalMs: 200,
          failureThreshold: 100,
          geoip: false,
        },
      },
      pino({ level: "silent" }),
      { local: { region: "westus", handle: failing } },
    );
    try {
      const url = `${endpoint.endpoint.url}/v2/hosted/failover/blobs/${blob.digest}`;
      const read = await send(url, hostClient);
      assert.equal(read.status, 200, read.body.toString());
      assert.equal(read.headers["x-meridian-replica"], "eastus");
      assert.equal(read.headers["x-broken"], undefined, "nothing of the failed answer leaks");
      assert.deepEqual(read.body, blob.bytes);
      // A write is answered where it was routed, error and all.
      const write = await send(
        `${endpoint.endpoint.url}/v2/hosted/failover/blobs/uploads/`,
        hostClient,
        {
          method: "POST",
        },
      );
      assert.equal(write.status, 503);
      assert.equal(write.headers["x-meridian-replica"], "westus");
    } finally {
      await endpoint.close();
    }
  });

  it("takes a skopeo push and pull through the hosted endpoint", async () => {
    const layoutDir = join(workDir, "layout");
    const layout = await OciLayoutBuilder.create(layoutDir);
    const image = await layout.addImage({
      architecture: "amd64",
      os: "linux",
      layerSizes: [1024, 300 * 1024],
    });
    layout.tag(image.manifest, "v1");
    await layout.finish();
    const host = new URL(base).host;
    await skopeo.run([
      "copy",
      "--dest-tls-verify=false",
      `oci:${layoutDir}:v1`,
      `docker://${host}/hosted/app:v1`,
    ]);
    const outDir = join(workDir, "out");
    await skopeo.run([
      "copy",
      "--src-tls-verify=false",
      `docker://${host}/hosted/app:v1`,
      `oci:${outDir}:v1`,
    ]);
    assert.equal((await readLayoutRef(outDir, "v1")).digest, image.manifest.digest);
    for (const layer of image.layers) await readVerifiedBlob(outDir, layer);
  });
});
