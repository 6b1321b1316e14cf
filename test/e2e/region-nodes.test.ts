// End-to-end: one region (westus) served by three nodes (separate processes with their
// own data folders) over one PostgreSQL schema and one Azure Blob container (Azurite),
// behind nginx; a second region (eastus) on the embedded default follows it through the
// balancer. skopeo pushes through one node and pulls through another; an upload started
// on one node is continued and finished on the others; a node that does not lead answers
// the control plane by forwarding it to the leader. While skopeo pushes through nginx, the
// leader is killed with SIGKILL: another node takes the lease within seconds, every
// acknowledged push is there on every node and in eastus, and the killed node comes back
// as a node that does not lead. A webhook whose receiver refuses every event until then
// gets each of those pushes once the receiver is back: the events the killed leader had
// not delivered wait in PostgreSQL, and the new leader sends them.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { BlobServiceClient } from "@azure/storage-blob";
import { freePorts } from "../support/cluster.ts";
import { type MeridianProcess, startMeridian } from "../support/meridian-process.ts";
import { type Balancer, nginxMissing, startBalancer } from "../support/nginx-balancer.ts";
import { type AzuriteServer, startAzurite } from "../support/object-store-servers.ts";
import { randomBlob } from "../support/oci-fixtures.ts";
import { OciLayoutBuilder } from "../support/oci-layout.ts";
import { type PostgresServer, postgresMissing, startPostgres } from "../support/postgres-server.ts";
import { createSkopeo, type Skopeo } from "../support/skopeo.ts";
import { waitFor } from "../support/wait-for.ts";
import { webhookApi } from "../support/webhook-fixtures.ts";
import { startReceiver, type WebhookReceiver } from "../support/webhook-receiver.ts";

const missing = postgresMissing() ?? nginxMissing();
const secret = "region-nodes-secret-0123456789";
const manifestType = "application/vnd.oci.image.manifest.v1+json";

describe("a region of three nodes on PostgreSQL and object storage", {
  skip: missing,
  timeout: 300_000,
}, () => {
  let postgres: PostgresServer;
  let azurite: AzuriteServer;
  let workDir = "";
  let config = "";
  let skopeo: Skopeo;
  let source = "";
  let balancer: Balancer;
  let east: MeridianProcess;
  let receiver: WebhookReceiver;
  let ports: number[] = [];
  const nodes: MeridianProcess[] = [];
  const tags = Array.from({ length: 8 }, (_, i) => `r${i}`);

  const startNode = (index: number) =>
    startMeridian({
      dataDir: join(workDir, `node-${index}`),
      args: ["--config", config, "--listen", `127.0.0.1:${ports[index]}`],
      env: { ...azurite.env, MERIDIAN_LOG_LEVEL: "info", MERIDIAN_REPLICATION_SECRET: secret },
    });

  const digestAt = async (node: MeridianProcess, reference: string) => {
    const answer = await fetch(`${node.url}/v2/region/app/manifests/${reference}`, {
      method: "HEAD",
      headers: { Accept: manifestType },
    });
    return answer.status === 200 ? answer.headers.get("docker-content-digest") : null;
  };

  before(async () => {
    postgres = await startPostgres();
    azurite = await startAzurite();
    await BlobServiceClient.fromConnectionString(azurite.connectionString)
      .getContainerClient("region")
      .create();
    workDir = await mkdtemp(join(tmpdir(), "meridian-region-nodes-"));
    ports = await freePorts(5);
    const eastPort = ports[3];
    config = join(workDir, "meridian.yaml");
    await writeFile(
      config,
      JSON.stringify({
        region: "westus",
        peers: [{ region: "eastus", url: `http://127.0.0.1:${eastPort}` }],
        replication: { antiEntropySeconds: 5, pollWaitMs: 5000 },
        // Retries close together, and never given up on within the test.
        webhooks: { maxAttempts: 100, initialBackoffMs: 100, maxBackoffMs: 500, tagWaitMs: 200 },
        storage: {
          metadata: { driver: "postgres", url: postgres.url, schema: "westus" },
          blobs: { driver: "azure", container: "region" },
        },
      }),
    );
    skopeo = await createSkopeo(join(workDir, "skopeo"));
    source = join(workDir, "layout");
    const layout = await OciLayoutBuilder.create(source);
    for (const tag of ["v1", "v2"]) {
      const image = await layout.addImage({
        architecture: "amd64",
        os: "linux",
        layerSizes: [1024, 512 * 1024],
      });
      layout.tag(image.manifest, tag);
    }
    for (const tag of tags) {
      const image = await layout.addImage({
        architecture: "amd64",
        os: "linux",
        layerSizes: [2048, 256 * 1024],
      });
      layout.tag(image.manifest, tag);
    }
    await layout.finish();
    // One at a time: the first takes the lease.
    for (let i = 0; i < 3; i += 1) nodes.push(await startNode(i));
    balancer = await startBalancer(ports.slice(0, 3).map((port) => `127.0.0.1:${port}`));
    // The other region, on the embedded default, follows westus through the balancer.
    const eastConfig = join(workDir, "eastus.yaml");
    await writeFile(
      eastConfig,
      JSON.stringify({
        region: "eastus",
        peers: [{ region: "westus", url: balancer.url }],
        replication: { antiEntropySeconds: 5, pollWaitMs: 5000 },
      }),
    );
    east = await startMeridian({
      args: ["--config", eastConfig, "--listen", `127.0.0.1:${eastPort}`],
      env: { MERIDIAN_REPLICATION_SECRET: secret },
    });
  });

  after(async () => {
    await east?.dispose();
    await receiver?.close();
    await balancer?.stop();
    for (const node of nodes) await node?.stop();
    await azurite?.stop();
    await postgres?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it("takes a push through one node and serves it from the others", async () => {
    const [a, b, c] = nodes as [MeridianProcess, MeridianProcess, MeridianProcess];
    await skopeo.run([
      "copy",
      "--dest-tls-verify=false",
      `oci:${source}:v1`,
      `docker://${b.host}/region/app:v1`,
    ]);
    const pushed = await digestAt(b, "v1");
    assert.ok(pushed);
    assert.equal(await digestAt(a, "v1"), pushed);
    assert.equal(await digestAt(c, "v1"), pushed);
    await skopeo.run([
      "copy",
      "--src-tls-verify=false",
      `docker://${c.host}/region/app:v1`,
      `dir:${join(workDir, "pulled")}`,
    ]);
  });

  it("finishes an upload on other nodes than the one that started it", async () => {
    const blob = randomBlob(2 * 1024 * 1024 + 5);
    const [a, b, c] = nodes as [MeridianProcess, MeridianProcess, MeridianProcess];
    const started = await fetch(`${a.url}/v2/region/chunks/blobs/uploads/`, { method: "POST" });
    assert.equal(started.status, 202);
    const half = 1024 * 1024;
    const first = await fetch(new URL(started.headers.get("location") ?? "", b.url), {
      method: "PATCH",
      headers: { "Content-Range": `0-${half - 1}`, "Content-Type": "application/octet-stream" },
      body: blob.bytes.subarray(0, half),
    });
    assert.equal(first.status, 202, await first.text());
    const location = new URL(first.headers.get("location") ?? "", c.url);
    location.searchParams.set("digest", blob.digest);
    const done = await fetch(location, {
      method: "PUT",
      headers: { "Content-Type": "application/octet-stream" },
      body: blob.bytes.subarray(half),
    });
    assert.equal(done.status, 201, await done.text());
    const read = await fetch(`${a.url}/v2/region/chunks/blobs/${blob.digest}`);
    assert.deepEqual(Buffer.from(await read.arrayBuffer()), blob.bytes);
  });

  it("answers the control plane from a node that does not lead", async () => {
    for (const node of nodes) {
      const status = await fetch(`${node.url}/_meridian/status`);
      assert.equal(status.status, 200, await status.text());
    }
  });

  it("hands the lead on when the leader is killed, and loses no acknowledged push", async () => {
    const [leader, b, c] = nodes as [MeridianProcess, MeridianProcess, MeridianProcess];
    // Every event waits in the outbox until the receiver answers 200, after the kill.
    receiver = await startReceiver(() => 503);
    const created = await webhookApi(b.url, "POST", "", {
      name: "deploy",
      uri: receiver.url,
      actions: ["push"],
      scope: "region/app:*",
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    // skopeo pushes through the balancer, one image after another, while the leader dies.
    const acknowledged: string[] = [];
    const pushing = (async () => {
      for (const tag of tags) {
        try {
          await skopeo.run([
            "copy",
            "--dest-tls-verify=false",
            `oci:${source}:${tag}`,
            `docker://${balancer.host}/region/app:${tag}`,
          ]);
          acknowledged.push(tag);
        } catch {
          // Not acknowledged: nothing is promised for it.
        }
      }
    })();
    await waitFor(() => acknowledged.length >= 2, "pushes under way", 60_000, 20);
    await leader.kill9();
    await waitFor(
      () => [b, c].some((node) => node.recentOutput().includes("this node leads the region now")),
      "another node to take the lead",
      30_000,
      50,
    );
    await waitFor(
      async () => (await fetch(`${c.url}/_meridian/status`)).status === 200,
      "the control plane answering again",
      30_000,
      100,
    );
    await skopeo.run([
      "copy",
      "--dest-tls-verify=false",
      `oci:${source}:v2`,
      `docker://${c.host}/region/app:v2`,
    ]);
    await pushing;
    assert.ok(acknowledged.length >= tags.length - 2, `acknowledged: ${acknowledged}`);
    nodes[0] = await startNode(0);
    const back = nodes[0];
    assert.doesNotMatch(back.recentOutput(), /this node leads the region now/);
    for (const node of nodes) {
      assert.ok(await digestAt(node, "v1"), "v1 still there");
      assert.ok(await digestAt(node, "v2"), "v2 there");
      for (const tag of acknowledged) assert.ok(await digestAt(node, tag), `${tag} on every node`);
    }
    // What the dead leader had not delivered, the new one delivers.
    receiver.setHandler(() => 200);
    const deliveredTags = () =>
      new Set(
        receiver.received
          .filter((event) => event.status === 200 && event.json.action === "push")
          .map((event) => (event.json.target as { tag?: string } | undefined)?.tag),
      );
    for (const tag of [...acknowledged, "v2"]) {
      await waitFor(() => deliveredTags().has(tag), `the push event of ${tag}`, 60_000, 100);
    }
    // The other region converges with the scaled-out one.
    for (const tag of [...acknowledged, "v1", "v2"]) {
      const expected = await digestAt(b, tag);
      await waitFor(
        async () => (await digestAt(east, tag)) === expected,
        `${tag} in eastus`,
        60_000,
        100,
      );
    }
  });
});
