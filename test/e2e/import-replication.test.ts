// End-to-end: an import is a local push of the replica that runs it. Imported into a
// region that is not home (the job runs there, it is not forwarded), the image reaches
// the other region through replication: same tag, same digests, every blob stored there.
// Run again, it changes no register. Through a global endpoint, the job record names its
// replica, and polls pinned to it reach it whatever routing does.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { freePorts, startTestCluster, type TestCluster } from "../support/cluster.ts";
import { pushTwoPlatformImage, runImport, twoPlatformImage } from "../support/import-source.ts";
import { type MeridianProcess, startMeridian } from "../support/meridian-process.ts";
import { sendFrom } from "../support/send-from.ts";
import { waitFor } from "../support/wait-for.ts";

describe("an imported image replicates like a push", () => {
  let cluster: TestCluster;
  let source: MeridianProcess;
  let global: string;
  const image = twoPlatformImage();

  before(async () => {
    const [port] = await freePorts(1);
    global = `http://127.0.0.1:${port}`;
    cluster = await startTestCluster({
      regions: ["westus", "eastus"],
      antiEntropySeconds: 3600,
      globalEndpoint: {
        listen: `127.0.0.1:${port}`,
        hostedBy: "westus",
        cidrRegions: { "127.0.0.2/32": "westus", "127.0.0.3/32": "eastus" },
        defaultRegion: "westus",
        probeIntervalMs: 200,
        failureThreshold: 1,
        geoip: false,
      },
    });
    source = await startMeridian();
    await pushTwoPlatformImage(source.url, "library/app", "v1", image);
  });

  after(async () => {
    await source?.dispose();
    await cluster?.dispose();
  });

  it("imported in eastus, is pullable from westus with the same digests", {
    timeout: 60_000,
  }, async () => {
    const job = await runImport(cluster.url("eastus"), {
      source: `${source.host}/library/app:v1`,
      image: "imported/app:v1",
      withReferrers: true,
    });
    assert.equal(job.state, "succeeded", job.reason);
    const jobs = (await (
      await fetch(`${cluster.url("westus")}/_meridian/admin/imports`)
    ).json()) as unknown[];
    assert.equal(jobs.length, 0, "the job ran in eastus only");

    await waitFor(
      async () => {
        const head = await fetch(`${cluster.url("westus")}/v2/imported/app/manifests/v1`, {
          method: "HEAD",
        });
        return head.headers.get("docker-content-digest") === image.index.digest;
      },
      "the imported tag in westus",
      30_000,
    );
    for (const blob of image.blobs) {
      await waitFor(
        () => cluster.hasLocalBlob("westus", "imported/app", blob.digest),
        `blob ${blob.digest} stored in westus`,
        30_000,
      );
    }
    const referrers = (await (
      await fetch(`${cluster.url("westus")}/v2/imported/app/referrers/${image.index.digest}`)
    ).json()) as { manifests: { digest: string }[] };
    assert.deepEqual(
      referrers.manifests.map((m) => m.digest),
      [image.referrer.digest],
    );

    // Run again: nothing moves and no register changes (every stamp stays).
    // Once replication is quiet: records echoed back from westus may still move stamps
    // until then (a read-through there stores an index's children with its stamp).
    await cluster.waitQuiescent();
    const before = await cluster.stateDigest("eastus", "imported/app");
    const again = await runImport(cluster.url("eastus"), {
      source: `${source.host}/library/app:v1`,
      image: "imported/app:v1",
      withReferrers: true,
    });
    assert.equal(again.state, "succeeded", again.reason);
    assert.equal(again.progress.bytesTransferred, 0);
    assert.equal(await cluster.stateDigest("eastus", "imported/app"), before);
  });

  it("through a global endpoint, polls pinned to the job's replica find it", {
    timeout: 60_000,
  }, async () => {
    await waitFor(
      async () =>
        (await send(`${global}/v2/`, "127.0.0.3")).headers["x-meridian-replica"] === "eastus",
      "the endpoint routes 127.0.0.3 to eastus",
    );
    const body = JSON.stringify({
      source: `${source.host}/library/app:v1`,
      image: "global/app:v1",
    });
    const posted = await send(`${global}/_meridian/admin/imports`, "127.0.0.3", {
      method: "POST",
      body,
    });
    assert.equal(posted.status, 202, posted.body);
    const job = JSON.parse(posted.body) as { id: string; region: string };
    assert.equal(job.region, "eastus");
    const unpinned = await send(`${global}/_meridian/admin/imports/${job.id}`, "127.0.0.2");
    assert.equal(unpinned.status, 404, "westus does not know the job");
    await waitFor(
      async () => {
        const polled = await send(
          `${global}/_meridian/admin/imports/${job.id}?_meridian_replica=eastus`,
          "127.0.0.2",
        );
        return (
          polled.status === 200 &&
          (JSON.parse(polled.body) as { state: string }).state === "succeeded"
        );
      },
      "the pinned poll to see the job succeed",
      30_000,
    );
  });
});

/** A JSON request from a loopback source address (the endpoint places it by address). */
async function send(
  url: string,
  localAddress: string,
  init: { method?: string; body?: string } = {},
) {
  const answer = await sendFrom(url, localAddress, {
    method: init.method,
    headers: { "Content-Type": "application/json" },
    body: init.body === undefined ? undefined : Buffer.from(init.body),
  });
  return { ...answer, body: answer.body.toString("utf8") };
}
