import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import pino from "pino";
import { Registry as MetricsRegistry } from "prom-client";
import { waitFor } from "../../test/support/wait-for.ts";
import { SqliteMetadataStore } from "../metadata/sqlite-metadata-store.ts";
import { HybridClock } from "../registry/hybrid-clock.ts";
import { Registry } from "../registry/registry.ts";
import { FsBlobStore } from "../storage/fs-blob-store.ts";
import { Replicator } from "./replicator.ts";
import { SqliteCheckpointStore } from "./sqlite-checkpoint-store.ts";

/** A peer that lists no repositories and keeps every connection until the client drops it. */
async function startIdlePeer(): Promise<{ url: string; open: Set<Socket>; server: Server }> {
  const open = new Set<Socket>();
  const server = createServer((req, res) => {
    const body = req.url?.startsWith("/_meridian/replication/repositories")
      ? JSON.stringify({ repositories: [] })
      : JSON.stringify({ errors: [{ code: "UNAVAILABLE", message: "fake", detail: {} }] });
    res.writeHead(body.includes("errors") ? 503 : 200, {
      "Content-Type": "application/json",
      "Content-Length": String(Buffer.byteLength(body)),
    });
    res.end(body);
  });
  // No server-side idle timeout: only the client can end a kept-alive connection here.
  server.keepAliveTimeout = 0;
  server.on("connection", (socket) => {
    open.add(socket);
    socket.once("close", () => open.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, open, server };
}

it("closes the keep-alive connections of every peer client when it stops", async () => {
  const dir = await mkdtemp(join(tmpdir(), "meridian-replicator-"));
  const peers = [await startIdlePeer(), await startIdlePeer()];
  const metadata = new SqliteMetadataStore({ path: join(dir, "metadata.db") });
  const checkpoints = new SqliteCheckpointStore(join(dir, "replication.db"));
  try {
    const registry = new Registry({
      blobs: await FsBlobStore.open({ root: dir }),
      metadata,
      clock: new HybridClock("westus"),
    });
    const replicator = await Replicator.create({
      region: "westus",
      peers: peers.map((peer, index) => ({ region: `peer${index}`, url: peer.url })),
      secret: "a-replication-secret",
      checkpoints,
      registry,
      metrics: new MetricsRegistry(),
      log: pino({ level: "silent" }),
      antiEntropyIntervalMs: 3_600_000,
    });
    // One anti-entropy round asks each peer for its repositories and keeps the connection.
    assert.equal(await replicator.reconcile(), 0);
    for (const peer of peers) assert.equal(peer.open.size, 1, "the connection is kept alive");
    await replicator.stop();
    await waitFor(
      () => peers.every((peer) => peer.open.size === 0),
      "every peer's connection to close",
      3_000,
    );
  } finally {
    await checkpoints.close();
    await metadata.close();
    for (const peer of peers) {
      peer.server.closeAllConnections();
      await new Promise((resolve) => peer.server.close(resolve));
    }
    await rm(dir, { recursive: true, force: true });
  }
});
