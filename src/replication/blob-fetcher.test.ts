// Two processes of one replica (two fetchers over one blob store, claims over one shared
// SQLite file) want the same blob from a peer at once: it crosses once, both see it
// stored. The peer holds its answer until both fetchers have asked for the claim (or both
// asked the peer), so that the two fetches overlap whatever the scheduling.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, it } from "node:test";
import { Registry as MetricsRegistry } from "prom-client";
import { waitFor } from "../../test/support/wait-for.ts";
import { digestOf } from "../oci/digest.ts";
import { openTestRegistry, type RegistryFixture } from "../registry/registry-test-fixture.ts";
import { BlobFetcher } from "./blob-fetcher.ts";
import type { FetchClaims } from "./fetch-claims.ts";
import { type PeerApiTestServer, startPeerApiServer } from "./peer-api-test-server.ts";
import type { PeerClient } from "./peer-client.ts";
import { ReplicationMetrics } from "./replication-metrics.ts";
import { SqliteFetchClaims } from "./sqlite-fetch-claims.ts";

const secret = "blob-fetcher-test-secret";
let peer: RegistryFixture;
let local: RegistryFixture;
let served: PeerApiTestServer;
let client: PeerClient;
let dir: string;
const blobRequests: string[] = [];
let claimAttempts = 0;

before(async () => {
  peer = await openTestRegistry("eastus");
  local = await openTestRegistry("westus");
  dir = await mkdtemp(join(tmpdir(), "meridian-fetch-claims-"));
  served = await startPeerApiServer({
    peer,
    secret,
    beforeServe: async (path) => {
      if (!path.startsWith("blobs/")) return;
      blobRequests.push(path);
      await waitFor(
        () => claimAttempts >= 2 || blobRequests.length >= 2,
        "both fetchers to have asked",
      );
    },
  });
  client = served.client;
});

after(async () => {
  await served?.close();
  await peer?.cleanup();
  await local?.cleanup();
  await rm(dir, { recursive: true, force: true });
});

it("fetches a blob two processes want at once from the peer once", async () => {
  const bytes = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
  const digest = digestOf(bytes);
  await peer.blobs.ingest(digest, Readable.from([bytes]));
  const fail = (error: unknown) => assert.fail(String(error));
  const processes = [0, 1].map(() => {
    const shared = new SqliteFetchClaims(join(dir, "replication.db"), fail);
    // Counts the asks, to hold the peer's answer until both processes asked.
    const claims: FetchClaims = {
      claim: (blob) => {
        claimAttempts += 1;
        return shared.claim(blob);
      },
      close: () => shared.close(),
    };
    const metrics = new ReplicationMetrics(new MetricsRegistry());
    return { claims, fetcher: new BlobFetcher(local.registry.intake, [client], metrics, claims) };
  });
  try {
    await Promise.all(processes.map(({ fetcher }) => fetcher.ensureBlob(digest, client)));
    assert.equal(blobRequests.length, 1, `the peer was asked ${blobRequests.length} times`);
    assert.ok(await local.blobs.stat(digest), "stored");
  } finally {
    for (const { fetcher, claims } of processes) {
      fetcher.close();
      await claims.close();
    }
  }
});
