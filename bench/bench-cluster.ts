// The multi-region Meridian of the replication and global endpoint figures: the tests'
// cluster (test/support/cluster.ts: free ports, topology file in a temp folder, every
// replica its own process, WAN links) with what a measurement needs on top: keep-alive
// clients per region, the replicas' warning lines, which replica died, a start that waits
// for every peer to be connected, and a kill on process exit.
import { rmSync } from "node:fs";
import { performance } from "node:perf_hooks";
import {
  startTestCluster,
  type TestCluster,
  type TestClusterOptions,
} from "../test/support/cluster.ts";
import { waitFor } from "../test/support/wait-for.ts";
import { errorText } from "./figures.ts";
import { RegistryClient } from "./registry-client.ts";
import type { ReplicationContext } from "./scenarios-replication.ts";

export interface BenchCluster extends TestCluster {
  /** A keep-alive client of the region's endpoint, shared by the scenario. */
  client(region: string, maxSockets?: number): RegistryClient;
  pid(region: string): number;
  /** Warning and error lines logged by each replica (at most 20 each). */
  readonly problemLines: Map<string, string[]>;
  /** One summary line per region that logged warnings or errors. */
  problemSummary(): string[];
  /** Undefined while every replica runs; otherwise which one stopped, with its output. */
  exitReason(): string | undefined;
}

const keptLines = 10;
const keptProblems = 20;
/** Clusters running now, so that an exit path can kill them. */
const live = new Set<BenchCluster>();

async function startBenchCluster(options: TestClusterOptions): Promise<BenchCluster> {
  const recent = new Map<string, string[]>();
  const problemLines = new Map<string, string[]>();
  const test = await startTestCluster({
    // The defaults of a deployment, not the tests' short ones.
    antiEntropySeconds: 30,
    pollWaitMs: 25_000,
    ...options,
    onLine: (region, line) => {
      const kept = recent.get(region) ?? [];
      kept.push(line);
      if (kept.length > keptLines) kept.shift();
      recent.set(region, kept);
      const problems = problemLines.get(region) ?? [];
      if (/"level":(40|50|60)\b/.test(line) && problems.length < keptProblems) {
        problems.push(line.length > 600 ? `${line.slice(0, 600)}...` : line);
      }
      problemLines.set(region, problems);
    },
  });
  const clients = new Map<string, RegistryClient>();
  const child = (region: string) => test.cluster.replica(region).process.child;
  const cluster: BenchCluster = {
    ...test,
    client(region, maxSockets = 8) {
      let client = clients.get(region);
      if (!client) {
        client = new RegistryClient(test.url(region), maxSockets);
        clients.set(region, client);
      }
      return client;
    },
    pid: (region) => child(region).pid ?? 0,
    problemLines,
    problemSummary: () =>
      [...problemLines.entries()]
        .filter(([, lines]) => lines.length > 0)
        .map(
          ([region, lines]) =>
            `replica ${region} logged ${lines.length}${lines.length >= keptProblems ? "+" : ""} warning/error line(s); first: ${lines[0]}`,
        ),
    exitReason() {
      for (const region of test.regions) {
        const { exitCode, signalCode } = child(region);
        if (exitCode !== null || signalCode !== null) {
          const tail = (recent.get(region) ?? []).join("\n") || "(none)";
          return `replica ${region} exited (${exitCode ?? signalCode}); last output: ${tail}`;
        }
      }
      return undefined;
    },
    async dispose() {
      for (const client of clients.values()) client.close();
      await test.dispose();
      live.delete(cluster);
    },
  };
  live.add(cluster);
  return cluster;
}

/**
 * Waits until every replica's status shows every peer connected (the replicas start
 * together, so the first feed requests fail until the peers listen), then forgets the
 * warnings logged so far; returns how many were dropped.
 */
async function waitConnected(cluster: BenchCluster, timeoutMs = 30_000): Promise<number> {
  const { regions } = cluster;
  let last = "";
  const down = async (region: string): Promise<string> => {
    try {
      const { peers } = await cluster.status(region);
      const waiting = peers.filter((peer) => !peer.connected).map((peer) => peer.region);
      if (peers.length === regions.length - 1 && waiting.length === 0) return "";
      return `${region}: peers not connected: ${waiting.join(", ") || "(none listed)"}`;
    } catch (error) {
      return `${region}: ${errorText(error)}`;
    }
  };
  await waitFor(
    async () => {
      last = (await Promise.all(regions.map(down))).filter((state) => state !== "").join("; ");
      return last === "";
    },
    "every replica connected to its peers",
    timeoutMs,
    50,
  ).catch((error: unknown) => {
    throw new Error(`${errorText(error)}: ${last}`);
  });
  let dropped = 0;
  for (const lines of cluster.problemLines.values()) {
    dropped += lines.length;
    lines.length = 0;
  }
  return dropped;
}

/** Starts a connected cluster, runs `work`, and always stops it; a replica that died is named. */
export async function withCluster(
  context: ReplicationContext,
  options: TestClusterOptions,
  work: (cluster: BenchCluster) => Promise<void>,
): Promise<void> {
  const started = performance.now();
  const cluster = await startBenchCluster(options);
  try {
    const dropped = await waitConnected(cluster);
    const wan = options.wan;
    context.log(
      `cluster ${options.regions.join(", ")} ${wan ? `with WAN links (rtt ${wan.rttMs ?? 0} ms${wan.bytesPerSecond ? `, ${wan.bytesPerSecond / 1e6} MB/s` : ""})` : "with direct links"} up and connected in ${Math.round(performance.now() - started)} ms${dropped > 0 ? ` (${dropped} warning(s) logged while the peers were starting, ignored)` : ""}`,
    );
    await work(cluster);
  } catch (error) {
    const exit = cluster.exitReason();
    throw new Error(exit ? `${errorText(error)}; ${exit}` : errorText(error));
  } finally {
    await cluster.dispose();
  }
}

/** Stops every cluster still running (signal handlers). */
export async function stopAllClusters(): Promise<void> {
  await Promise.all([...live].map((cluster) => cluster.dispose()));
}

/** SIGKILLs every cluster still running and removes its folder (process exit). */
export function killAllClustersNow(): void {
  for (const cluster of live) {
    for (const { process: replica } of cluster.cluster.replicas.values()) {
      const { child } = replica;
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
    rmSync(cluster.dir, { recursive: true, force: true });
  }
  live.clear();
}
