import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer as createHttpServer } from "node:http";
import { type AddressInfo, createServer as createTcpServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import Database from "better-sqlite3";
import pino from "pino";
import { stringify as toYaml } from "yaml";
import { waitFor } from "../test/support/wait-for.ts";
import { ListenError } from "./config/listen-address.ts";
import { loadConfig } from "./config/load-config.ts";
import { startReplica } from "./replica.ts";

/** A peer that fails every request, counting them and the connections still open. */
async function startFailingPeer() {
  const seen = { requests: 0, lastAt: 0, open: new Set<Socket>() };
  const server = createHttpServer((_req, res) => {
    seen.requests += 1;
    seen.lastAt = Date.now();
    res.writeHead(503, { "Content-Length": "0" });
    res.end();
  });
  server.keepAliveTimeout = 0;
  server.on("connection", (socket) => {
    seen.open.add(socket);
    socket.once("close", () => seen.open.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { seen, server, port: (server.address() as AddressInfo).port };
}

/** Whether the SQLite file can be taken exclusively: nothing in this process holds it. */
function exclusivelyOpenable(path: string): boolean {
  const db = new Database(path, { timeout: 0 });
  try {
    db.pragma("locking_mode = EXCLUSIVE");
    db.exec("BEGIN EXCLUSIVE; COMMIT");
    return true;
  } catch {
    return false;
  } finally {
    db.close();
  }
}

it("stops replication and closes its stores when it cannot listen", async () => {
  const dir = await mkdtemp(join(tmpdir(), "meridian-replica-"));
  const busy = createTcpServer();
  await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
  const busyPort = (busy.address() as AddressInfo).port;
  const peer = await startFailingPeer();
  try {
    const file = join(dir, "meridian.yaml");
    await writeFile(
      file,
      toYaml({
        region: "westus",
        // Anti-entropy every 100 ms: a round left running would reach the peer at once.
        replication: { secret: "a-replication-secret", antiEntropySeconds: 0.1 },
        replicas: [
          { region: "westus", home: true, listen: `127.0.0.1:${busyPort}`, data: dir },
          { region: "eastus", listen: `127.0.0.1:${peer.port}`, data: join(dir, "eastus") },
        ],
        log: { level: "silent" },
      }),
    );
    const config = await loadConfig({ file, env: {} });
    await assert.rejects(startReplica(config, pino({ level: "silent" })), (error: unknown) => {
      assert.ok(error instanceof ListenError, String(error));
      assert.equal(error.message, `cannot listen on 127.0.0.1:${busyPort}: address already in use`);
      return true;
    });
    // Quiet: no connection left, and no request for a second since the failure (the
    // follower's first retries come 100-800 ms apart, anti-entropy every 100 ms).
    const failedAt = Date.now();
    await waitFor(
      () => peer.seen.open.size === 0 && Date.now() - Math.max(failedAt, peer.seen.lastAt) > 1_000,
      "the peer to hear nothing more from the replica",
      5_000,
    );
    const before = peer.seen.requests;
    assert.ok(exclusivelyOpenable(join(dir, "metadata.db")), "the metadata database is closed");
    assert.ok(exclusivelyOpenable(join(dir, "replication.db")), "the checkpoints are closed");
    assert.equal(peer.seen.requests, before);
  } finally {
    busy.close();
    peer.server.closeAllConnections();
    peer.server.close();
    await rm(dir, { recursive: true, force: true });
  }
});
