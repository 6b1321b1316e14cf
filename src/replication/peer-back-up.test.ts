// A peer back from an outage is asked for content again as soon as it calls this replica,
// and its follower retries its feed then instead of waiting out its backoff.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import pino from "pino";
import { Registry as MetricsRegistry } from "prom-client";
import { waitFor } from "../../test/support/wait-for.ts";
import { openTestRegistry } from "../registry/registry-test-fixture.ts";
import { BlobFetcher } from "./blob-fetcher.ts";
import { startPeerApiServer } from "./peer-api-test-server.ts";
import { PeerClient } from "./peer-client.ts";
import { PeerFollower } from "./peer-follower.ts";
import { ReplicationMetrics } from "./replication-metrics.ts";
import { SqliteCheckpointStore } from "./sqlite-checkpoint-store.ts";

const secret = "peer-back-up-secret-0123";

/** A peer that is down: it accepts each connection and drops it, counting them. */
async function startDownPeer(): Promise<{ server: Server; url: string; attempts: () => number }> {
  let attempts = 0;
  const server = createServer((socket) => {
    attempts += 1;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (typeof address !== "object" || address === null) throw new Error("no address");
  return { server, url: `http://127.0.0.1:${address.port}`, attempts: () => attempts };
}

it("asks a peer again, and retries its feed at once, when it calls", async () => {
  const down = await startDownPeer();
  const local = await openTestRegistry("westus");
  const dir = await mkdtemp(join(tmpdir(), "meridian-peer-back-up-"));
  const checkpoints = new SqliteCheckpointStore(join(dir, "replication.db"));
  const client = new PeerClient({ region: "eastus", url: down.url }, secret, "westus");
  const metrics = new ReplicationMetrics(new MetricsRegistry());
  const follower = new PeerFollower({
    peer: client,
    peers: [client],
    registry: local.registry,
    checkpoints,
    fetcher: new BlobFetcher(local.registry.intake, [client], metrics),
    metrics,
    log: pino({ level: "silent" }),
    // A minute between tries: only a wake can bring the next one within the test.
    feedBackoffMs: { first: 60_000, max: 60_000 },
  });
  try {
    follower.start();
    await waitFor(async () => !follower.reachable, "the first feed request failed");
    const before = down.attempts();
    follower.peerIsUp();
    assert.equal(follower.reachable, true, "worth asking for content again at once");
    await waitFor(async () => down.attempts() > before, "a feed request right after the call");
    // That request failed too (the peer is still "down" here), but the peer called a
    // moment ago: it is still asked for content.
    assert.equal(follower.reachable, true);
  } finally {
    await follower.stop();
    client.close();
    await checkpoints.close();
    await new Promise<void>((resolve) => down.server.close(() => resolve()));
    await local.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
});

it("tells the peer API which region a peer request comes from, when it says", async () => {
  const peer = await openTestRegistry("eastus");
  const heard: string[] = [];
  const served = await startPeerApiServer({
    peer,
    secret,
    heardFrom: (region) => heard.push(region),
  });
  const url = served.client.url;
  const named = new PeerClient({ region: "eastus", url }, secret, "westus");
  const unnamed = new PeerClient({ region: "eastus", url }, secret);
  try {
    await named.head(5_000);
    await unnamed.head(5_000);
    const junk = await fetch(`${url}/_meridian/replication/repositories`, {
      headers: { authorization: `Bearer ${secret}`, "x-meridian-peer-region": "West US!" },
    });
    assert.equal(junk.status, 200);
    const stranger = await fetch(`${url}/_meridian/replication/repositories`, {
      headers: { "x-meridian-peer-region": "northeurope" },
    });
    assert.equal(stranger.status, 401);
    assert.deepEqual(heard, ["westus"], "only the authenticated request naming a region");
  } finally {
    named.close();
    unnamed.close();
    await served.close();
    await peer.cleanup();
  }
});
