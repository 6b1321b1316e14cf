// Regional webhooks across three regions joined by slow WAN links (westus home, eastus,
// westeurope): webhooks pinned to eastus and westeurope are created through a non-home
// replica; each receiver, inside its handler, pulls the pushed manifest and every blob
// from its region's endpoint (and checks through the peer API that the region holds them
// itself, not by reading through): 200 every time over 20 pushes made in westus. The events
// carry ACR's fields, and the same push has the same eventKey in both regions and in the
// unpinned webhook, which fires once, from westus. A delete reaches a pinned webhook only
// once the tag is gone in its region.
// Owns: this file. Helpers: test/support/{cluster,webhook-receiver,webhook-fixtures}.ts.
import assert from "node:assert/strict";
import { after, before, describe } from "node:test";
import {
  clusterTest as clusterTestOf,
  startTestCluster,
  type TestCluster,
} from "../support/cluster.ts";
import { ociManifestType } from "../support/oci-fixtures.ts";
import { waitFor } from "../support/wait-for.ts";
import { pushImage, webhookApi } from "../support/webhook-fixtures.ts";
import {
  type ReceivedEvent,
  startReceiver,
  type WebhookReceiver,
} from "../support/webhook-receiver.ts";

const regions = ["westus", "eastus", "westeurope"] as const;
const [west, east, europe] = regions;
const repository = "geo/app";
const pushes = 20;

describe("regional webhooks fire when the image is really there", () => {
  let cluster: TestCluster;
  const receivers: WebhookReceiver[] = [];
  /** Per pinned region: every pull the receiver made inside its handler. */
  const pulls = new Map<string, { eventKey: string; statuses: number[]; local: boolean[] }[]>();
  const clusterTest = (name: string, body: () => Promise<void>): void =>
    clusterTestOf(() => cluster, name, body, 180_000);

  /** Pulls what the event names from `region`, as a deployment hook would. */
  const pullFrom = async (region: string, event: ReceivedEvent): Promise<number> => {
    const target = event.json.target as { repository: string; tag?: string; digest: string };
    const base = cluster.url(region);
    const statuses: number[] = [];
    const local: boolean[] = [];
    if (event.json.action === "push" && target.tag) {
      const manifest = await fetch(`${base}/v2/${target.repository}/manifests/${target.tag}`, {
        headers: { Accept: ociManifestType },
      });
      statuses.push(manifest.status);
      const text = await manifest.text();
      if (manifest.status === 200) {
        const parsed = JSON.parse(text) as {
          config: { digest: string };
          layers: { digest: string }[];
        };
        for (const digest of [parsed.config.digest, ...parsed.layers.map((l) => l.digest)]) {
          const blob = await fetch(`${base}/v2/${target.repository}/blobs/${digest}`);
          await blob.arrayBuffer();
          statuses.push(blob.status);
          local.push(await cluster.hasLocalBlob(region, target.repository, digest));
        }
      }
      // The region holds the tag itself (the peer API never reads through).
      const own = await fetch(
        `${base}/_meridian/replication/manifest?repository=${encodeURIComponent(target.repository)}&reference=${target.tag}`,
        { headers: { Authorization: `Bearer ${cluster.secret}` } },
      );
      await own.arrayBuffer();
      local.push(own.status === 200);
      pulls.get(region)?.push({ eventKey: event.json.eventKey as string, statuses, local });
    }
    return 200;
  };

  let eastHook: WebhookReceiver;
  let europeHook: WebhookReceiver;
  let anyHook: WebhookReceiver;

  before(async () => {
    cluster = await startTestCluster({
      regions,
      wan: { rttMs: 40, bytesPerSecond: 4_000_000 },
      antiEntropySeconds: 3600,
    });
    for (const region of [east, europe]) pulls.set(region, []);
    eastHook = await startReceiver((event) => pullFrom(east, event));
    europeHook = await startReceiver((event) => pullFrom(europe, event));
    anyHook = await startReceiver(() => 200);
    receivers.push(eastHook, europeHook, anyHook);
  });

  after(async () => {
    await cluster?.dispose();
    for (const r of receivers) await r.close();
  });

  const pushKeys = (hook: WebhookReceiver) =>
    new Set(hook.received.filter((e) => e.json.action === "push").map((e) => e.json.eventKey));

  clusterTest(
    "a receiver pinned to another region pulls every pushed image from there",
    async () => {
      for (const [name, uri, location] of [
        ["to-east", eastHook.url, east],
        ["to-europe", europeHook.url, europe],
        ["anywhere", anyHook.url, undefined],
      ] as const) {
        // Made through a replica that is not home: the write is forwarded there.
        const made = await webhookApi(cluster.url(europe), "POST", "", {
          name,
          uri,
          actions: ["push", "delete"],
          scope: "geo/*:*",
          ...(location ? { location } : {}),
        });
        assert.equal(made.status, 201, JSON.stringify(made.body));
      }
      await waitFor(
        async () => {
          const lists = await Promise.all(
            regions.map((r) => webhookApi(cluster.url(r), "GET", "")),
          );
          return lists.every((l) => Array.isArray(l.body) && l.body.length === 3);
        },
        "the webhooks in every region",
        30_000,
        50,
      );

      const pushed: string[] = [];
      let firstRequestId: string | null = null;
      for (let i = 0; i < pushes; i += 1) {
        const image = await pushImage(cluster.url(west), repository, `v${i}`, 256 * 1024);
        pushed.push(image.digest);
        if (i === 0) firstRequestId = image.requestId;
      }
      await waitFor(
        // A receiver records an event on arrival and its pulls when its handler is done.
        () =>
          [eastHook, europeHook, anyHook].every((hook) => pushKeys(hook).size === pushes) &&
          [east, europe].every((region) => pulls.get(region)?.length === pushes),
        "every push event at every receiver, and its pulls done",
        120_000,
        100,
      );

      for (const region of [east, europe]) {
        const seen = pulls.get(region) ?? [];
        assert.equal(seen.length, pushes, region);
        for (const pull of seen) {
          assert.ok(
            pull.statuses.length === 3 && pull.statuses.every((s) => s === 200),
            `${region}: ${pull.statuses}`,
          );
          assert.ok(pull.local.every(Boolean), `${region} holds the image itself: ${pull.local}`);
        }
      }
      // One logical event, one key, in every region; the unpinned webhook fired once each.
      assert.deepEqual([...pushKeys(eastHook)].sort(), [...pushKeys(europeHook)].sort());
      assert.deepEqual([...pushKeys(eastHook)].sort(), [...pushKeys(anyHook)].sort());
      assert.equal(anyHook.received.length, pushes);

      const first = eastHook.received.find((e) => (e.json.target as { tag?: string }).tag === "v0");
      assert.ok(first);
      const event = first.json as {
        id: string;
        timestamp: string;
        action: string;
        region: string;
        eventKey: string;
        target: Record<string, unknown>;
        request: Record<string, unknown>;
      };
      assert.equal(event.action, "push");
      assert.equal(event.region, east);
      assert.ok(!Number.isNaN(Date.parse(event.timestamp)));
      assert.equal(typeof event.id, "string");
      assert.deepEqual(Object.keys(event.target).sort(), [
        "digest",
        "length",
        "mediaType",
        "repository",
        "size",
        "tag",
      ]);
      assert.equal(event.target.digest, pushed[0]);
      assert.equal(event.target.mediaType, ociManifestType);
      assert.equal(event.target.repository, repository);
      // The client request as the origin recorded it, named the same in every region.
      assert.deepEqual(event.request, {
        id: firstRequestId,
        host: new URL(cluster.url(west)).host,
        method: "PUT",
        useragent: "node",
      });
      const fromEurope = europeHook.received.find((e) => e.json.eventKey === event.eventKey);
      assert.equal(fromEurope?.json.region, europe);
      assert.deepEqual(fromEurope?.json.request, event.request);
      assert.notEqual(fromEurope?.json.id, event.id, "each delivery has its own id");
      assert.equal(anyHook.byKey(event.eventKey)[0]?.json.region, west);
    },
  );

  clusterTest("a delete reaches a pinned webhook once it took effect in its region", async () => {
    const gone = new Map<string, number>();
    for (const [hook, region] of [
      [eastHook, east],
      [europeHook, europe],
    ] as const) {
      hook.setHandler(async (event) => {
        if (event.json.action === "delete") {
          const probe = await fetch(
            `${cluster.url(region)}/_meridian/replication/manifest?repository=${encodeURIComponent(repository)}&reference=v0`,
            { headers: { Authorization: `Bearer ${cluster.secret}` } },
          );
          await probe.arrayBuffer();
          gone.set(region, probe.status);
        }
        return 200;
      });
    }
    const deleted = await fetch(`${cluster.url(west)}/v2/${repository}/manifests/v0`, {
      method: "DELETE",
    });
    assert.equal(deleted.status, 202);
    const deleteRequest = deleted.headers.get("x-request-id");
    await waitFor(() => gone.size === 2, "the delete event in both pinned regions", 30_000, 50);
    assert.equal(gone.get(east), 404);
    assert.equal(gone.get(europe), 404);
    const deletes = (hook: WebhookReceiver) =>
      hook.received.filter((e) => e.json.action === "delete").map((e) => e.json.eventKey);
    assert.deepEqual(deletes(eastHook), deletes(europeHook));
    for (const hook of [eastHook, europeHook]) {
      const event = hook.received.find((e) => e.json.action === "delete");
      assert.deepEqual(event?.json.request, {
        id: deleteRequest,
        host: new URL(cluster.url(west)).host,
        method: "DELETE",
        useragent: "node",
      });
    }
    await waitFor(() => deletes(anyHook).length === 1, "the unpinned delete event", 30_000, 50);
    assert.deepEqual(deletes(anyHook), deletes(eastHook));
  });

  clusterTest(
    "an unpinned webhook's events are listed from every region, and redelivered where kept",
    async () => {
      const image = await pushImage(cluster.url(east), repository, "from-east");
      await waitFor(
        () => anyHook.received.some((e) => (e.json.target as { tag?: string }).tag === "from-east"),
        "the push made in eastus at the unpinned receiver",
        30_000,
        50,
      );
      const fromEast = anyHook.received.find(
        (e) => (e.json.target as { tag?: string }).tag === "from-east",
      );
      assert.equal(fromEast?.json.region, east, "it fired from where the push happened");
      // Asked of a third region, the listing holds the events of both origins.
      const listed = await webhookApi(cluster.url(europe), "GET", "/anywhere/events?limit=500");
      assert.equal(listed.status, 200);
      const events = listed.body as { id: string; region: string; eventKey: string }[];
      assert.deepEqual([...new Set(events.map((e) => e.region))].sort(), [east, west].sort());
      const eastEvent = events.find((e) => e.eventKey === fromEast?.json.eventKey);
      assert.equal(eastEvent?.region, east);
      assert.ok(image.digest);
      const again = await webhookApi(
        cluster.url(europe),
        "POST",
        `/anywhere/events/${eastEvent?.id}/redeliver`,
      );
      assert.equal(again.status, 202, JSON.stringify(again.body));
      await waitFor(
        () => anyHook.byKey(fromEast?.json.eventKey as string).length === 2,
        "the redelivery from eastus",
        30_000,
        50,
      );
      const missing = await webhookApi(
        cluster.url(europe),
        "POST",
        "/anywhere/events/00000000-0000-4000-8000-000000000000/redeliver",
      );
      assert.equal(missing.status, 404);
    },
  );
});
