// End-to-end: the replica set's lifecycle under the local supervisor, as `meridian up`
// runs it. Creating a replica while images exist starts a real process that bootstraps
// from its nearest peer and reaches Ready holding every image (one pushed during its
// bootstrap too); deleting it drains what only it holds into the others, then removes its
// process and data folder, and the others stop following it; the refusals; and a replica
// killed with SIGKILL is restarted and catches up. The global endpoint (hosted by the home
// replica) routes to the new replica once it is Ready and stops when it is deleted.
// Owns: this file. Helpers: test/support/{cluster,replication-http,wait-for}.ts.
import assert from "node:assert/strict";
import { access } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe } from "node:test";
import {
  clusterTest as clusterTestOf,
  freePorts,
  startTestCluster,
  type TestCluster,
} from "../support/cluster.ts";
import { getManifest, makeImage, pushImage } from "../support/replication-http.ts";
import { sendFrom } from "../support/send-from.ts";
import { waitFor } from "../support/wait-for.ts";

interface Replication {
  name: string;
  endpoint: string | null;
  provisioningState: string;
  status: string;
  statusMessage?: string;
}

describe("replica lifecycle under the local supervisor", () => {
  let cluster: TestCluster;
  const clusterTest = (name: string, body: () => Promise<void>) =>
    clusterTestOf(() => cluster, name, body, 150_000);

  /** A client the hosted global endpoint places in Europe. */
  const europeClient = "127.0.0.4";
  let global = "";
  const servedEurope = async () =>
    (await sendFrom(`${global}/v2/`, europeClient)).headers["x-meridian-replica"];

  before(async () => {
    const [port] = await freePorts(1);
    global = `http://127.0.0.1:${port}`;
    cluster = await startTestCluster({
      regions: ["westus", "eastus"],
      wan: { rttMs: 4 },
      supervised: true,
      logLevel: "info",
      globalEndpoint: {
        listen: `127.0.0.1:${port}`,
        hostedBy: "westus",
        cidrRegions: { [`${europeClient}/32`]: "westeurope" },
        probeIntervalMs: 200,
        failureThreshold: 1,
        geoip: false,
      },
    });
  });
  after(async () => {
    await cluster?.dispose();
  });

  const admin = async (region: string, method: string, path: string, body?: unknown) => {
    const response = await fetch(`${cluster.url(region)}/_meridian/admin/${path}`, {
      method,
      headers: { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(20_000),
    });
    const text = await response.text();
    return { status: response.status, json: text ? (JSON.parse(text) as unknown) : undefined };
  };
  const replication = async (name: string) =>
    (await admin("westus", "GET", `replications/${name}`)).json as Replication;

  clusterTest(
    "a replica created while images exist reaches Ready holding every image, one pushed during its bootstrap too",
    async () => {
      const before = [makeImage([300_000, 2_000], "a"), makeImage([1_500_000], "b")];
      for (const [i, image] of before.entries()) {
        await pushImage(cluster.url("westus"), `team/app${i}`, "v1", image);
      }
      // Asked of a replica that is not home: the write is forwarded there.
      const created = await admin("eastus", "POST", "replications", { location: "westeurope" });
      assert.equal(created.status, 201, JSON.stringify(created.json));
      const view = created.json as Replication;
      assert.equal(view.provisioningState, "Creating");
      assert.match(view.endpoint ?? "", /^http:\/\/127\.0\.0\.1:\d+$/);
      const during = makeImage([40_000], "during");
      await pushImage(cluster.url("westus"), "team/during", "v1", during);

      await waitFor(
        async () => (await replication("westeurope")).status === "Ready",
        "westeurope to become Ready",
        90_000,
        200,
      );
      await waitFor(
        async () => (await replication("westeurope")).provisioningState === "Succeeded",
        "westeurope's record to say Succeeded",
        10_000,
        100,
      );
      // The global endpoint sends Europe's clients to the new replica once it is Ready.
      await waitFor(
        async () => (await servedEurope()) === "westeurope",
        "the global endpoint to route Europe's clients to westeurope",
        20_000,
        100,
      );
      for (const [repository, image] of [
        ["team/app0", before[0]],
        ["team/app1", before[1]],
        ["team/during", during],
      ] as const) {
        if (!image) throw new Error("no image");
        await waitFor(
          async () =>
            (await cluster.stateDigest("westeurope", repository)) ===
            (await cluster.stateDigest("westus", repository)),
          `${repository} to reach westeurope`,
          30_000,
          100,
        );
        for (const blob of [image.config, ...image.layers]) {
          assert.ok(
            await cluster.hasLocalBlob("westeurope", repository, blob.digest),
            `westeurope holds ${blob.digest} of ${repository}`,
          );
        }
      }
    },
  );

  clusterTest(
    "deleting a replica drains what only it holds into the others, then removes its process and data",
    async () => {
      const europe = cluster.url("westeurope");
      // Nobody reaches westeurope while it takes a push: only it holds the image.
      cluster.cluster.cut("westus", "westeurope");
      cluster.cluster.cut("eastus", "westeurope");
      const only = makeImage([120_000], "only-in-europe");
      await pushImage(europe, "team/europe", "v1", only);
      assert.equal((await getManifest(cluster.url("westus"), "team/europe", "v1")).status, 404);
      cluster.cluster.heal("westus", "westeurope");
      cluster.cluster.heal("eastus", "westeurope");

      const deleted = await admin("westus", "DELETE", "replications/westeurope");
      assert.equal(deleted.status, 202, JSON.stringify(deleted.json));
      assert.equal((deleted.json as Replication).status, "Deleting");
      await waitFor(
        async () => (await admin("westus", "GET", "replications/westeurope")).status === 404,
        "westeurope to be deleted",
        90_000,
        200,
      );
      for (const region of ["westus", "eastus"]) {
        const answer = await getManifest(cluster.url(region), "team/europe", "v1");
        assert.equal(answer.status, 200, `${region} has the image pushed only in westeurope`);
        assert.ok(await cluster.hasLocalBlob(region, "team/europe", only.layers[0]?.digest ?? ""));
        await waitFor(
          async () => !(await cluster.status(region)).peers.some((p) => p.region === "westeurope"),
          `${region} to stop following westeurope`,
          10_000,
          100,
        );
      }
      await assert.rejects(access(join(cluster.dir, "westeurope")), "its data folder is gone");
      await waitFor(
        async () => (await servedEurope()) !== "westeurope",
        "the global endpoint to stop routing to westeurope",
        20_000,
        100,
      );
      await assert.rejects(fetch(`${europe}/v2/`), "its process is gone");
    },
  );

  clusterTest("refuses what ACR refuses, saying why", async () => {
    const home = await admin("eastus", "DELETE", "replications/westus");
    assert.equal(home.status, 400);
    assert.match(JSON.stringify(home.json), /the home replica is deleted only with the registry/);
    const twice = await admin("westus", "POST", "replications", { location: "eastus" });
    assert.equal(twice.status, 409);
    assert.match(JSON.stringify(twice.json), /already exists in location 'eastus'/);
    const unknown = await admin("westus", "POST", "replications", { location: "mars" });
    assert.equal(unknown.status, 400);
    assert.match(JSON.stringify(unknown.json), /not a known region.*westeurope/);
    const bad = await admin("westus", "POST", "replications", { where: "eastus" });
    assert.equal(bad.status, 400);
    assert.equal((await admin("westus", "GET", "replications/nowhere")).status, 404);
  });

  clusterTest("a replica killed with SIGKILL is restarted and catches up", async () => {
    const killed = cluster.cluster.replica("eastus");
    killed.process.child.kill("SIGKILL");
    const image = makeImage([50_000], "after-kill");
    await pushImage(cluster.url("westus"), "team/after-kill", "v1", image);
    await waitFor(
      async () => {
        const current = cluster.cluster.replicas.get("eastus");
        if (!current || current === killed) return false;
        return (await getManifest(current.url, "team/after-kill", "v1")).status === 200;
      },
      "eastus to be restarted and to have the image pushed meanwhile",
      60_000,
      100,
    );
    assert.ok(
      await cluster.hasLocalBlob("eastus", "team/after-kill", image.layers[0]?.digest ?? ""),
    );
  });
});
