// Read-through without waiting on dead peers (westus, eastus, westeurope over WAN links):
// a miss asks only the peers reachable now, each with a short deadline; a blob HEAD miss
// is answered from a peer's size without moving the blob; a read-through GET streams the
// blob while it is stored and verified. A fake peer that serves corrupted bytes shows
// that the client's download then fails and nothing is stored or linked.
// Owns: this file. Helpers: test/support/{cluster,read-through-peer}.ts.
import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, it } from "node:test";
import {
  clusterTest as clusterTestOf,
  startTestCluster,
  type TestCluster,
} from "../support/cluster.ts";
import { blobOf, randomBlob } from "../support/oci-fixtures.ts";
import { startCorruptingPeer } from "../support/read-through-peer.ts";
import { pushBlob } from "../support/registry-http.ts";
import { waitFor } from "../support/wait-for.ts";

const [west, east, europe] = ["westus", "eastus", "westeurope"] as const;
const MiB = 1024 * 1024;
/**
 * A miss must be answered well before a dead peer's 10 s request timeout; the replicas
 * give peers 1 s (replication.readThroughTimeoutMs).
 */
const answeredWithinMs = 5_000;

interface TimedRead {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** Whether the body arrived whole (false: the connection broke first). */
  complete: boolean;
  firstByteMs: number | undefined;
  totalMs: number;
}

/** A GET or HEAD that records when the first body byte and the end arrived. */
function timedRead(url: string, method: "GET" | "HEAD" = "GET"): Promise<TimedRead> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: { Connection: "close" } }, (res) => {
      const chunks: Buffer[] = [];
      let firstByteMs: number | undefined;
      let settled = false;
      const finish = () => {
        if (settled) return;
        settled = true;
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks),
          complete: res.complete,
          firstByteMs,
          totalMs: performance.now() - started,
        });
      };
      res.on("data", (chunk: Buffer) => {
        firstByteMs ??= performance.now() - started;
        chunks.push(chunk);
      });
      res.on("end", finish);
      res.on("error", finish);
      res.on("close", finish);
    });
    req.on("error", reject);
    req.end();
  });
}

describe("read-through", () => {
  let cluster: TestCluster;

  const clusterTest = (name: string, body: () => Promise<void>): void =>
    clusterTestOf(() => cluster, name, body);

  before(async () => {
    // Anti-entropy stays out of the way: only the feeds and read-through move content.
    cluster = await startTestCluster({
      regions: [west, east, europe],
      wan: { rttMs: 10 },
      antiEntropySeconds: 3600,
    });
  });

  after(async () => {
    await cluster?.dispose();
  });

  clusterTest(
    "a blob HEAD miss with a peer blackholed answers from another peer's size and stores nothing",
    async () => {
      const repository = "rt/head";
      const blob = randomBlob(4 * MiB);
      // westus is dead to westeurope, and eastus can send it bytes only slowly, so that
      // replication cannot bring the blob while the HEAD is asked.
      cluster.cluster.blackhole(west, europe);
      cluster.cluster.link(europe, east).setBandwidth(50_000);
      try {
        await pushBlob(cluster.url(west), repository, blob);
        await waitFor(
          () => cluster.hasLocalBlob(east, repository, blob.digest),
          "eastus to hold the blob",
          30_000,
        );
        const head = await timedRead(
          `${cluster.url(europe)}/v2/${repository}/blobs/${blob.digest}`,
          "HEAD",
        );
        assert.equal(head.status, 200);
        assert.equal(head.headers["content-length"], String(blob.size));
        assert.equal(head.headers["docker-content-digest"], blob.digest);
        assert.ok(
          head.totalMs < answeredWithinMs,
          `HEAD answered in ${Math.round(head.totalMs)} ms, not after moving the blob`,
        );
        assert.equal(
          await cluster.hasLocalBlob(europe, repository, blob.digest),
          false,
          "a HEAD stores and links nothing",
        );
      } finally {
        cluster.cluster.link(europe, east).setBandwidth(undefined);
        cluster.cluster.heal(west, europe);
      }
    },
  );

  clusterTest(
    "a manifest GET of a new tag and a blob HEAD miss answer 404 within the deadline while a peer is blackholed",
    async () => {
      cluster.cluster.blackhole(west, europe);
      try {
        const manifest = await timedRead(`${cluster.url(europe)}/v2/rt/miss/manifests/new-tag`);
        assert.equal(manifest.status, 404);
        assert.ok(
          manifest.totalMs < answeredWithinMs,
          `manifest miss answered in ${Math.round(manifest.totalMs)} ms`,
        );
        const unknown = randomBlob(100);
        const head = await timedRead(
          `${cluster.url(europe)}/v2/rt/miss/blobs/${unknown.digest}`,
          "HEAD",
        );
        assert.equal(head.status, 404);
        assert.ok(head.totalMs < answeredWithinMs, `HEAD miss answered in ${head.totalMs} ms`);
      } finally {
        cluster.cluster.heal(west, europe);
      }
    },
  );

  clusterTest(
    "read-through GETs stream a large blob from its first bytes over one transfer, stored verified",
    async () => {
      const repository = "rt/stream";
      const blob = randomBlob(64 * MiB);
      const received = "meridian_replication_bytes_received_total";
      // Every byte into westeurope crosses a 20 MB/s link: the transfer takes seconds.
      cluster.cluster.link(europe, west).setBandwidth(20_000_000);
      cluster.cluster.link(europe, east).setBandwidth(20_000_000);
      try {
        const receivedBefore = await cluster.metric(europe, received);
        await pushBlob(cluster.url(west), repository, blob);
        const url = `${cluster.url(europe)}/v2/${repository}/blobs/${blob.digest}`;
        // Two clients at once (and replication, which learns of the blob meanwhile).
        const reads = await Promise.all([timedRead(url), timedRead(url)]);
        for (const [i, read] of reads.entries()) {
          assert.equal(read.status, 200);
          assert.equal(read.complete, true);
          assert.equal(blobOf(read.body).digest, blob.digest);
          const firstByteMs = read.firstByteMs ?? Number.POSITIVE_INFINITY;
          process.stdout.write(
            `read-through ${i + 1} of 64 MiB at 20 MB/s: first byte after ${Math.round(firstByteMs)} ms, whole blob after ${Math.round(read.totalMs)} ms\n`,
          );
          assert.ok(
            firstByteMs < read.totalMs * 0.25,
            `first byte after ${Math.round(firstByteMs)} ms of ${Math.round(read.totalMs)} ms`,
          );
        }
        assert.ok(
          await cluster.hasLocalBlob(europe, repository, blob.digest),
          "the blob is stored and linked in westeurope once it verified",
        );
        const crossed = (await cluster.metric(europe, received)) - receivedBefore;
        assert.ok(
          crossed < 1.5 * blob.size,
          `${crossed} bytes crossed into westeurope for one ${blob.size}-byte blob`,
        );
      } finally {
        cluster.cluster.link(europe, west).setBandwidth(undefined);
        cluster.cluster.link(europe, east).setBandwidth(undefined);
      }
    },
  );
});

describe("read-through from a peer that serves corrupted bytes", () => {
  it("fails the client's download and stores or links nothing", { timeout: 60_000 }, async () => {
    const blob = randomBlob(3 * MiB);
    const setup = await startCorruptingPeer(blob);
    try {
      const url = `${setup.replicaUrl}/v2/rt/corrupt/blobs/${blob.digest}`;
      const read = await timedRead(url);
      assert.equal(read.status, 200, read.body.toString().slice(0, 300));
      assert.equal(read.complete, false, "the download must fail, never end as complete");
      assert.ok(read.body.length < blob.size, `${read.body.length} of ${blob.size} bytes came`);
      await waitFor(() => setup.transferSettled(), "the failed transfer to be given up", 20_000);
      assert.equal(await setup.linked("rt/corrupt", blob.digest), false, "nothing is linked");
      assert.equal(await setup.stored(blob.digest), false, "nothing is stored");
    } catch (error) {
      if (error instanceof Error) error.message += `\n${setup.logs()}`;
      throw error;
    } finally {
      await setup.dispose();
    }
  });
});
