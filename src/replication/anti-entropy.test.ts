import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import pino from "pino";
import { Registry as MetricsRegistry } from "prom-client";
import { digestOf } from "../oci/digest.ts";
import { formatStamp } from "../registry/hybrid-clock.ts";
import { openTestRegistry, type RegistryFixture } from "../registry/registry-test-fixture.ts";
import { AntiEntropy } from "./anti-entropy.ts";
import { BlobFetcher } from "./blob-fetcher.ts";
import { type PeerApiTestServer, startPeerApiServer } from "./peer-api-test-server.ts";
import type { PeerClient } from "./peer-client.ts";
import { ReplicationMetrics } from "./replication-metrics.ts";

const secret = "anti-entropy-test-secret";
const repositories = Array.from(
  { length: 60 },
  (_, i) => `team/repo-${String(i).padStart(2, "0")}`,
);

describe("anti-entropy", () => {
  let peer: RegistryFixture;
  let local: RegistryFixture;
  let served: PeerApiTestServer;
  let antiEntropy: AntiEntropy;
  let client: PeerClient;
  const requests: string[] = [];
  const log = pino({ level: "silent" });

  const bothLink = async (repository: string, text: string, n: number) => {
    const bytes = Buffer.from(text);
    const digest = digestOf(bytes);
    const stamp = formatStamp(Date.now() - 10_000 + n, 0, "eastus");
    for (const fixture of [peer, local]) {
      if (!(await fixture.blobs.stat(digest))) {
        await fixture.blobs.ingest(digest, Readable.from([bytes]));
      }
      await fixture.metadata.linkBlob({
        repository,
        digest,
        size: bytes.length,
        stamp,
      });
    }
  };

  before(async () => {
    peer = await openTestRegistry("eastus");
    local = await openTestRegistry("westus");
    served = await startPeerApiServer({
      peer,
      secret,
      // Counts every request of the peer API before it is served.
      beforeServe: (path) => {
        requests.push(path);
      },
    });
    client = served.client;
    const metrics = new ReplicationMetrics(new MetricsRegistry());
    antiEntropy = new AntiEntropy({
      registry: local.registry,
      peers: [client],
      fetcher: new BlobFetcher(local.registry.intake, [client], metrics),
      metrics,
      log,
      intervalMs: 3_600_000,
    });
    for (const [i, repository] of repositories.entries()) {
      await bothLink(repository, `layer of ${repository}`, i);
    }
  });

  after(async () => {
    await served?.close();
    await peer?.cleanup();
    await local?.cleanup();
  });

  it("compares every repository in one request per peer", async () => {
    requests.length = 0;
    assert.equal(await antiEntropy.runOnce(), 0);
    assert.deepEqual(requests, ["state"]);
  });

  it("merges only the repositories that differ, blob links and their tombstones included", async () => {
    const bytes = Buffer.from("only the peer links this");
    const digest = digestOf(bytes);
    await peer.blobs.ingest(digest, Readable.from([bytes]));
    await peer.metadata.linkBlob({
      repository: "team/repo-07",
      digest,
      size: bytes.length,
      stamp: formatStamp(Date.now() - 1_000, 0, "eastus"),
    });
    const unlinked = digestOf(Buffer.from("layer of team/repo-33"));
    await peer.metadata.unlinkBlob(
      "team/repo-33",
      unlinked,
      formatStamp(Date.now() - 900, 0, "eastus"),
    );
    requests.length = 0;
    assert.equal(await antiEntropy.runOnce(), 2);
    assert.deepEqual(
      requests.map((r) => r.split("/")[0]),
      ["state", "export", "blobs", "export"],
    );
    assert.ok(await local.metadata.getBlobLink("team/repo-07", digest));
    assert.equal(await local.metadata.getBlobLink("team/repo-33", unlinked), undefined);
    assert.deepEqual(await local.metadata.stateDigests(), await peer.metadata.stateDigests());
    requests.length = 0;
    assert.equal(await antiEntropy.runOnce(), 0, "nothing left to repair");
  });
});
