import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import pino from "pino";
import { Registry as MetricsRegistry } from "prom-client";
import { digestOf } from "../oci/digest.ts";
import { formatStamp, parseStamp } from "../registry/hybrid-clock.ts";
import { openTestRegistry, type RegistryFixture } from "../registry/registry-test-fixture.ts";
import { BlobFetcher } from "./blob-fetcher.ts";
import { type PeerApiTestServer, startPeerApiServer } from "./peer-api-test-server.ts";
import { PeerFollower } from "./peer-follower.ts";
import { ReplicationMetrics } from "./replication-metrics.ts";
import { SqliteCheckpointStore } from "./sqlite-checkpoint-store.ts";

const secret = "follower-test-secret-0123";
const hourMs = 3_600_000;

/** Waits for a condition with a deadline. */
async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("peer follower", () => {
  let peer: RegistryFixture;
  let local: RegistryFixture;
  let served: PeerApiTestServer;
  let follower: PeerFollower;
  let metrics: MetricsRegistry;
  let checkpoints: SqliteCheckpointStore;
  let dir: string;
  const logLines: string[] = [];
  const requests: string[] = [];

  const counter = async (name: string) => {
    const metric = metrics.getSingleMetric(name);
    const values = (await metric?.get())?.values ?? [];
    return values.filter((v) => v.labels.peer === "eastus").reduce((sum, v) => sum + v.value, 0);
  };

  const addBlob = async (fixture: RegistryFixture, text: string) => {
    const bytes = Buffer.from(text);
    const digest = digestOf(bytes);
    await fixture.blobs.ingest(digest, Readable.from([bytes]));
    return { digest, size: bytes.length };
  };

  before(async () => {
    // The peer's clock runs two hours ahead: every stamp it makes itself is a runaway.
    peer = await openTestRegistry("eastus", { now: () => Date.now() + 2 * hourMs });
    local = await openTestRegistry("westus");
    const log = pino({ level: "warn" }, { write: (line: string) => logLines.push(line) });
    served = await startPeerApiServer({
      peer,
      secret,
      log,
      // Notes every peer API request before it is served.
      beforeServe: (path) => {
        requests.push(path);
      },
    });
    const client = served.client;
    metrics = new MetricsRegistry();
    const replicationMetrics = new ReplicationMetrics(metrics);
    dir = await mkdtemp(join(tmpdir(), "meridian-follower-"));
    checkpoints = new SqliteCheckpointStore(join(dir, "replication.db"));
    follower = new PeerFollower({
      peer: client,
      peers: [client],
      registry: local.registry,
      checkpoints,
      fetcher: new BlobFetcher(local.registry.intake, [client], replicationMetrics),
      metrics: replicationMetrics,
      log,
      pollWaitMs: 200,
      maxApplyAttempts: 2,
      retryBaseMs: 5,
    });
    follower.start();
  });

  after(async () => {
    await follower?.stop();
    await checkpoints?.close();
    await served?.close();
    await peer?.cleanup();
    await local?.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  it("applies the peer's records, a small blob inside its record, and checkpoints each", async () => {
    const blob = await addBlob(peer, "a layer from eastus");
    const stamp = formatStamp(Date.now() - 1_000, 0, "eastus");
    await peer.metadata.linkBlob({ repository: "r", ...blob, stamp });
    await until(
      async () => (await local.metadata.getBlobLink("r", blob.digest)) !== undefined,
      "the link",
    );
    assert.ok(await local.blobs.stat(blob.digest), "the bytes were stored");
    assert.deepEqual(
      requests.filter((r) => r.startsWith("blobs/")),
      [],
      "no second trip for a small blob",
    );
    await until(
      async () => (await checkpoints.get("eastus")).seq === (await peer.metadata.headSeq()),
      "the checkpoint",
    );
  });

  it("gets later commits on the stream it holds open, without asking again", async () => {
    const first = await addBlob(peer, "first on the stream");
    await peer.metadata.linkBlob({
      repository: "s",
      ...first,
      stamp: formatStamp(Date.now() - 900, 0, "eastus"),
    });
    await until(
      async () => (await local.metadata.getBlobLink("s", first.digest)) !== undefined,
      "the first link",
    );
    const feedRequests = requests.filter((r) => r.startsWith("feed")).length;
    for (let i = 0; i < 3; i += 1) {
      const blob = await addBlob(peer, `later on the stream ${i}`);
      await peer.metadata.linkBlob({
        repository: "s",
        ...blob,
        stamp: formatStamp(Date.now() - 800 + i, 0, "eastus"),
      });
      await until(
        async () => (await local.metadata.getBlobLink("s", blob.digest)) !== undefined,
        `link ${i}`,
      );
    }
    assert.equal(
      requests.filter((r) => r.startsWith("feed")).length,
      feedRequests,
      "no new feed request: the records came on the open stream",
    );
  });

  it("fetches a blob too large to travel inside its record", async () => {
    const blob = await addBlob(peer, "x".repeat(1024 * 1024 + 1));
    await peer.metadata.linkBlob({
      repository: "r",
      ...blob,
      stamp: formatStamp(Date.now() - 800, 0, "eastus"),
    });
    await until(
      async () => (await local.metadata.getBlobLink("r", blob.digest)) !== undefined,
      "the large link",
    );
    assert.ok(requests.includes(`blobs/${blob.digest}`));
  });

  it("refuses a runaway stamp, names the peer, and goes on with the peer's other records", async () => {
    const runaway = await addBlob(peer, "stamped by a runaway clock");
    await peer.registry.blobs.link("r", runaway.digest, runaway.size);
    // A record the peer relays from a replica with a sane clock comes after it.
    const relayed = await addBlob(peer, "relayed from westeurope");
    await peer.metadata.linkBlob({
      repository: "r",
      ...relayed,
      stamp: formatStamp(Date.now() - 500, 0, "westeurope"),
    });
    await until(
      async () => (await local.metadata.getBlobLink("r", relayed.digest)) !== undefined,
      "the relayed link",
    );
    assert.equal(await local.metadata.getBlobLink("r", runaway.digest), undefined);
    assert.equal(await counter("meridian_replication_stamps_refused_total"), 1);
    assert.ok(logLines.some((line) => line.includes("refusing a change from eastus")));
    const ownStamp = parseStamp(local.registry.clock.next());
    assert.ok(
      ownStamp && ownStamp.physical < Date.now() + 60_000,
      "the clock was not dragged ahead",
    );
  });

  it("gives up on a record whose content nobody has, counts it, and goes on", async () => {
    const before = await counter("meridian_replication_records_given_up_total");
    // The peer links a blob whose bytes it does not hold (as after a lost disk).
    const missing = digestOf(Buffer.from("bytes nobody has"));
    await peer.metadata.linkBlob({
      repository: "r",
      digest: missing,
      size: 16,
      stamp: formatStamp(Date.now() - 400, 0, "westeurope"),
    });
    const next = await addBlob(peer, "after the lost one");
    await peer.metadata.linkBlob({
      repository: "r",
      ...next,
      stamp: formatStamp(Date.now() - 300, 0, "westeurope"),
    });
    await until(
      async () => (await local.metadata.getBlobLink("r", next.digest)) !== undefined,
      "the next link",
    );
    assert.equal(await local.metadata.getBlobLink("r", missing), undefined);
    assert.equal(await counter("meridian_replication_records_given_up_total"), before + 1);
  });
});
