// The event source on a real metadata store and outbox: a push by tag is one event with
// its tag whether the manifest and tag arrive in one commit (the origin) or one after the
// other (a follower); a manifest alone becomes a push by digest once the tag wait is over
// on a follower, at once where it was made;
// unpinned webhooks fire only from the replica that made the change, pinned ones only
// from their region; the event key is the same wherever it is derived; restarting from the
// saved cursor adds nothing twice.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { waitFor } from "../../test/support/wait-for.ts";
import type { ManifestRecord } from "../metadata/metadata-store.ts";
import { SqliteMetadataStore } from "../metadata/sqlite-metadata-store.ts";
import type { Digest } from "../oci/digest.ts";
import { formatStamp } from "../registry/hybrid-clock.ts";
import { EventSource } from "./event-source.ts";
import { SqliteOutboxStore } from "./sqlite-outbox-store.ts";
import type { Webhook } from "./webhook-record.ts";

const digest = `sha256:${"a".repeat(64)}` as Digest;
const manifest = (stamp: string): ManifestRecord => ({
  repository: "app",
  digest,
  mediaType: "application/vnd.oci.image.manifest.v1+json",
  bytes: Buffer.from("{}"),
  blobs: [],
  manifests: [],
  stamp,
});
const webhooks: Webhook[] = [
  {
    name: "here",
    uri: "http://127.0.0.1:9/",
    actions: ["push", "delete"],
    headers: {},
    status: "enabled",
    location: "eastus",
  },
  { name: "origin", uri: "http://127.0.0.1:9/", actions: ["push"], headers: {}, status: "enabled" },
];

async function open(replicaId: string, settleMs = 50, hooks: () => Webhook[] = () => webhooks) {
  const dir = await mkdtemp(join(tmpdir(), "meridian-events-"));
  const metadata = new SqliteMetadataStore({ path: join(dir, "metadata.db"), durable: false });
  const outbox = new SqliteOutboxStore(join(dir, "webhooks.db"), { durable: false });
  const start = () => {
    const source = new EventSource({
      metadata,
      outbox,
      webhooks: async () => hooks(),
      region: "eastus",
      replicaId,
      host: "registry.test",
      settleMs,
      onEnqueued: () => {},
      onError: (error) => assert.fail(String(error)),
    });
    const stop = metadata.onCommit(() => source.poke());
    source.poke();
    return { source, stop };
  };
  let running = start();
  return {
    metadata,
    outbox,
    events: (name: string) => outbox.events(name, 100),
    restart: async () => {
      running.stop();
      await running.source.stop();
      running = start();
    },
    close: async () => {
      running.stop();
      await running.source.stop();
      await outbox.close();
      await metadata.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

describe("webhook event source", () => {
  it("a push by tag in one commit is one event with its tag, for both kinds of webhook", async () => {
    const replica = await open("r-east");
    try {
      await replica.metadata.putManifest(manifest(formatStamp(1000, 0, "r-east")), "v1");
      await waitFor(
        async () =>
          (await replica.events("here")).length === 1 &&
          (await replica.events("origin")).length === 1,
        "events",
      );
      const [event] = await replica.events("here");
      const body = JSON.parse(event?.payload ?? "{}") as {
        target: { tag?: string };
        eventKey: string;
      };
      assert.equal(body.target.tag, "v1");
      assert.equal(body.eventKey, (await replica.events("origin"))[0]?.eventKey);
    } finally {
      await replica.close();
    }
  });

  it("a follower's manifest then tag make one event, with the origin's key; none for an unpinned webhook", async () => {
    const origin = await open("r-west");
    const follower = await open("r-east", 60_000);
    try {
      const stamp = formatStamp(2000, 0, "r-west");
      await origin.metadata.putManifest(manifest(stamp), "v2");
      await follower.metadata.putManifest(manifest(stamp));
      await follower.metadata.setTag("app", "v2", digest, stamp);
      await waitFor(
        async () => (await follower.events("here")).length === 1,
        "the follower's event",
      );
      await waitFor(async () => (await origin.events("here")).length === 1, "the origin's event");
      assert.equal(
        (await follower.events("here"))[0]?.eventKey,
        (await origin.events("here"))[0]?.eventKey,
      );
      assert.equal(
        (await follower.events("origin")).length,
        0,
        "an unpinned webhook fires from the origin",
      );
      assert.equal((await origin.events("origin")).length, 1);
    } finally {
      await origin.close();
      await follower.close();
    }
  });

  it("a manifest without a tag is a push by digest once the tag wait is over", async () => {
    const replica = await open("r-east", 30);
    try {
      await replica.metadata.putManifest(manifest(formatStamp(3000, 0, "r-west")));
      await waitFor(async () => (await replica.events("here")).length === 1, "the push by digest");
      const body = JSON.parse((await replica.events("here"))[0]?.payload ?? "{}") as {
        target: Record<string, unknown>;
      };
      assert.equal(body.target.tag, undefined);
      assert.equal(body.target.digest, digest);
    } finally {
      await replica.close();
    }
  });

  it("a push by digest made here needs no wait: its tag would be in the same commit", async () => {
    const replica = await open("r-east", 60_000);
    try {
      await replica.metadata.putManifest(manifest(formatStamp(3500, 0, "r-east")));
      await waitFor(
        async () => (await replica.events("origin")).length === 1,
        "the push by digest",
      );
    } finally {
      await replica.close();
    }
  });

  it("passes over the changes made while no webhook exists, and sends the first one after", async () => {
    let current: Webhook[] = [];
    const replica = await open("r-east", 50, () => current);
    try {
      await replica.metadata.putManifest(manifest(formatStamp(4500, 0, "r-east")), "before");
      const head = await replica.metadata.headSeq();
      await waitFor(
        async () => ((await replica.outbox.cursor())?.seq ?? 0) >= head,
        "the cursor past the change",
      );
      current = webhooks;
      await replica.metadata.setTag("app", "after", digest, formatStamp(4501, 0, "r-east"));
      await waitFor(async () => (await replica.events("here")).length === 1, "the event");
      const body = JSON.parse((await replica.events("here"))[0]?.payload ?? "{}") as {
        target: { tag?: string };
      };
      assert.equal(body.target.tag, "after");
    } finally {
      await replica.close();
    }
  });

  it("resumes from the saved cursor without adding an event twice", async () => {
    const replica = await open("r-east");
    try {
      await replica.metadata.putManifest(manifest(formatStamp(4000, 0, "r-east")), "a");
      await waitFor(async () => (await replica.events("here")).length === 1, "the first event");
      await replica.restart();
      await replica.metadata.deleteTag("app", "a", formatStamp(4001, 0, "r-east"));
      await waitFor(async () => (await replica.events("here")).length === 2, "the delete event");
      assert.deepEqual(
        (await replica.events("here")).map((e) => e.action),
        ["delete", "push"],
      );
    } finally {
      await replica.close();
    }
  });
});
