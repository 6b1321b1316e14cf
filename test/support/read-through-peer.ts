// One real replica (westus) whose only peer (eastus) is a fake: a small HTTP server that
// answers the peer API with an empty feed and, for one blob, says it links it (with the
// right size) and then serves bytes that fail its digest. For the read-through tests of
// verification: what a replica does when a peer sends wrong bytes.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify as toYaml } from "yaml";
import { type ReplicaProcess, startReplicaProcess } from "../../src/cluster/replica-process.ts";
import { freePorts, sumSamples } from "./cluster.ts";
import type { TestBlob } from "./oci-fixtures.ts";
import { isStored } from "./stored-blobs.ts";

export interface CorruptingPeerSetup {
  replicaUrl: string;
  /** Whether the fake peer has served the blob and the replica has given up on it. */
  transferSettled(): Promise<boolean>;
  /** Whether the replica itself links the blob into the repository (peer API). */
  linked(repository: string, digest: string): Promise<boolean>;
  /** Whether the replica's blob store holds the digest. */
  stored(digest: string): Promise<boolean>;
  logs(): string;
  dispose(): Promise<void>;
}

const secret = "test-secret-0123456789abcdef";

export async function startCorruptingPeer(blob: TestBlob): Promise<CorruptingPeerSetup> {
  const dir = await mkdtemp(join(tmpdir(), "meridian-corrupt-"));
  const wrong = Buffer.from(blob.bytes);
  wrong[0] = (wrong[0] ?? 0) ^ 0xff;
  let blobsServed = 0;
  const waits = new Set<NodeJS.Timeout>();
  const fake: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://fake");
    const route = url.pathname.replace("/_meridian/replication/", "");
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { "Content-Type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (route === "feed") {
      // Long-polls like a real peer with nothing new, so the follower does not spin.
      const wait = Math.min(Number(url.searchParams.get("wait") ?? 0), 5_000);
      const timer = setTimeout(() => {
        waits.delete(timer);
        json(200, { records: [], head: 0, log: "fake-peer-log" });
      }, wait);
      waits.add(timer);
      return;
    }
    if (route === "link" && url.searchParams.get("digest") === blob.digest) {
      json(200, { size: blob.size, stamp: `${Date.now() - 1_000}.000000.eastus` });
      return;
    }
    if (route === `blobs/${blob.digest}`) {
      blobsServed += 1;
      res.writeHead(200, {
        "Content-Type": "application/octet-stream",
        "Content-Length": String(wrong.length),
      });
      // In pieces, as a real peer's body arrives.
      for (let offset = 0; offset < wrong.length; offset += 256 * 1024) {
        res.write(wrong.subarray(offset, offset + 256 * 1024));
      }
      res.end();
      return;
    }
    if (route === "repositories") {
      json(200, { repositories: [] });
      return;
    }
    json(404, { errors: [{ code: "NAME_UNKNOWN", message: "not here" }] });
  });
  fake.listen(0, "127.0.0.1");
  await new Promise<void>((resolve) => fake.once("listening", () => resolve()));
  const fakePort = (fake.address() as AddressInfo).port;
  const [port] = await freePorts(1);
  const data = join(dir, "westus");
  const configFile = join(dir, "meridian.yaml");
  await writeFile(
    configFile,
    toYaml({
      replication: { secret, antiEntropySeconds: 3600, pollWaitMs: 5000 },
      replicas: [
        { region: "westus", home: true, listen: `127.0.0.1:${port}`, data },
        { region: "eastus", listen: `127.0.0.1:${fakePort}`, data: join(dir, "eastus") },
      ],
      log: { level: "warn" },
    }),
  );
  const lines: string[] = [];
  let replica: ReplicaProcess;
  try {
    replica = await startReplicaProcess({
      args: ["--config", configFile, "--region", "westus"],
      env: { MERIDIAN_REPLICATION_SECRET: secret, MERIDIAN_LOG_LEVEL: "warn" },
      onLine: (line) => {
        lines.push(line);
        if (lines.length > 40) lines.shift();
      },
    });
  } catch (error) {
    fake.close();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const replicaUrl = replica.url;
  return {
    replicaUrl,
    transferSettled: async () => {
      if (blobsServed === 0) return false;
      const metrics = await (await fetch(`${replicaUrl}/metrics`)).text();
      return sumSamples(metrics, "meridian_replication_pending_blobs") === 0;
    },
    linked: async (repository, digest) => {
      const query = `repository=${encodeURIComponent(repository)}&digest=${encodeURIComponent(digest)}`;
      const response = await fetch(`${replicaUrl}/_meridian/replication/link?${query}`, {
        headers: { Authorization: `Bearer ${secret}` },
      });
      await response.text();
      return response.status === 200;
    },
    stored: (digest) => isStored(data, digest),
    logs: () => lines.join("\n"),
    dispose: async () => {
      await replica.stop();
      for (const timer of waits) clearTimeout(timer);
      fake.closeAllConnections();
      await new Promise<void>((resolve) => fake.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
