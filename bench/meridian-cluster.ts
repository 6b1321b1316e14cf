// A multi-region Meridian on loopback for the replication figures: free ports, a topology
// file in a temp folder, every replica as its own process through LocalCluster (with a WAN
// link per ordered pair of replicas when `wan` is given), /metrics and /proc probes, and a
// stop that never hangs (SIGKILL after a grace period) and removes the folder.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as delay } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { stringify as toYaml } from "yaml";
import { LocalCluster } from "../src/cluster/local-cluster.ts";
import { loadConfig } from "../src/config/load-config.ts";
import type { WanLink } from "../src/wan/wan-link.ts";
import { freePorts } from "../test/support/cluster.ts";
import { RegistryClient } from "./registry-client.ts";

export interface BenchClusterOptions {
  /** Regions of the catalogue; the first is home. */
  readonly regions: readonly string[];
  /** WAN emulation (a proxy per ordered pair); omitted means direct links. */
  readonly wan?: { readonly rttMs: number; readonly bytesPerSecond?: number };
  /** The topology's `globalEndpoint` section (an endpoint hosted by a replica). */
  readonly globalEndpoint?: Record<string, unknown>;
}

const keptLines = 40;
const stopGraceMs = 10_000;
const repoRoot = fileURLToPath(new URL("../", import.meta.url));

/** Clusters running now, so that an exit path can kill them. */
const live = new Set<BenchCluster>();

/** "meridian <commit>[ + uncommitted src changes]", as the single-replica run prints it. */
export function meridianVersion(): string {
  try {
    const git = (...args: string[]) =>
      execFileSync("git", args, { cwd: repoRoot, encoding: "utf8" }).trim();
    const dirty = git("status", "--porcelain", "src") !== "";
    return `meridian ${git("rev-parse", "--short", "HEAD")}${dirty ? " + uncommitted src changes" : ""}`;
  } catch {
    return "unknown";
  }
}

/** Sum of every sample of `name` in a Prometheus text exposition (0 when absent). */
export function metricSum(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const next = line.charAt(name.length);
    if (next !== "{" && next !== " ") continue;
    const value = Number(line.slice(line.lastIndexOf(" ") + 1));
    if (Number.isFinite(value)) sum += value;
  }
  return sum;
}

export class BenchCluster {
  private stopping: Promise<void> | undefined;
  private readonly clients = new Map<string, RegistryClient>();

  private constructor(
    readonly cluster: LocalCluster,
    readonly regions: readonly string[],
    readonly dir: string,
    /** The last output lines of each replica. */
    private readonly recent: Map<string, string[]>,
    /** Warning and error lines logged by the replicas (at most 20 each). */
    readonly problemLines: Map<string, string[]>,
  ) {}

  static async start(options: BenchClusterOptions): Promise<BenchCluster> {
    const dir = await mkdtemp(join(tmpdir(), "meridian-bench-cluster-"));
    const recent = new Map<string, string[]>();
    const problems = new Map<string, string[]>();
    let cluster: LocalCluster | undefined;
    try {
      const ports = await freePorts(options.regions.length);
      const replicas = options.regions.map((region, index) => ({
        region,
        ...(index === 0 ? { home: true } : {}),
        listen: `127.0.0.1:${ports[index]}`,
        data: join(dir, region),
      }));
      for (const replica of replicas) await mkdir(replica.data, { recursive: true });
      const topology: Record<string, unknown> = {
        replication: { secret: randomBytes(16).toString("hex"), antiEntropySeconds: 30 },
        replicas,
        log: { level: "warn" },
      };
      if (options.globalEndpoint) topology.globalEndpoint = options.globalEndpoint;
      if (options.wan) {
        topology.wan = {
          rttMs: options.wan.rttMs,
          ...(options.wan.bytesPerSecond ? { bytesPerSecond: options.wan.bytesPerSecond } : {}),
        };
      }
      const configFile = join(dir, "meridian.yaml");
      await writeFile(configFile, toYaml(topology));
      const config = await loadConfig({ file: configFile, env: {} }, { topologyOnly: true });
      cluster = await LocalCluster.start({
        configFile,
        config,
        env: { MERIDIAN_LOG_LEVEL: "warn" },
        onLine: (region, line) => {
          const kept = recent.get(region) ?? [];
          kept.push(line);
          if (kept.length > keptLines) kept.shift();
          recent.set(region, kept);
          if (/"level":(40|50|60)\b/.test(line)) {
            const seen = problems.get(region) ?? [];
            if (seen.length < 20) seen.push(line.length > 600 ? `${line.slice(0, 600)}...` : line);
            problems.set(region, seen);
          }
        },
      });
      const started = new BenchCluster(cluster, options.regions, dir, recent, problems);
      live.add(started);
      return started;
    } catch (error) {
      await cluster?.stop().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
  }

  url(region: string): string {
    return this.cluster.replica(region).url;
  }

  pid(region: string): number {
    return this.cluster.replica(region).process.child.pid ?? 0;
  }

  link(from: string, to: string): WanLink {
    return this.cluster.link(from, to);
  }

  /** A keep-alive client of the region's endpoint, shared by the scenario. */
  client(region: string, maxSockets = 8): RegistryClient {
    let client = this.clients.get(region);
    if (!client) {
      client = new RegistryClient(this.url(region), maxSockets);
      this.clients.set(region, client);
    }
    return client;
  }

  async metrics(region: string): Promise<string> {
    const reply = await this.client(region).expect("GET", "/metrics", [200], {
      keepBodyBytes: 4 * 1024 * 1024,
    });
    return reply.body.toString("utf8");
  }

  /** Sum of the samples of `name` in the region's /metrics. */
  async metric(region: string, name: string): Promise<number> {
    return metricSum(await this.metrics(region), name);
  }

  /**
   * Waits until every replica's GET /_meridian/status shows every peer connected (the
   * replicas start together, so the first feed requests fail until the peers listen), then
   * forgets the warnings logged so far; returns how many were dropped.
   */
  async waitConnected(timeoutMs = 30_000): Promise<number> {
    const deadline = performance.now() + timeoutMs;
    let last = "";
    for (;;) {
      const states = await Promise.all(
        this.regions.map(async (region) => {
          try {
            const reply = await this.client(region).send("GET", "/_meridian/status");
            const body = JSON.parse(reply.body.toString("utf8")) as {
              peers?: { region?: string; connected?: boolean }[];
            };
            const peers = body.peers ?? [];
            const down = peers.filter((peer) => peer.connected !== true);
            if (
              reply.status === 200 &&
              peers.length === this.regions.length - 1 &&
              down.length === 0
            )
              return "";
            return `${region}: HTTP ${reply.status}, peers not connected: ${down.map((peer) => peer.region).join(", ") || "(none listed)"}`;
          } catch (error) {
            return `${region}: ${(error as Error).message}`;
          }
        }),
      );
      last = states.filter((state) => state !== "").join("; ");
      if (last === "") break;
      if (performance.now() > deadline) {
        throw new Error(`replicas not connected to their peers after ${timeoutMs} ms: ${last}`);
      }
      await delay(50);
    }
    let dropped = 0;
    for (const lines of this.problemLines.values()) {
      dropped += lines.length;
      lines.length = 0;
    }
    return dropped;
  }

  /** Whether every replica process is still running; otherwise which one stopped, with its output. */
  exitReason(): string | undefined {
    for (const region of this.regions) {
      const replica = this.cluster.replicas.get(region);
      const child = replica?.process.child;
      if (child && (child.exitCode !== null || child.signalCode !== null)) {
        return `replica ${region} exited (${child.exitCode ?? child.signalCode}); last output: ${this.logTail(region)}`;
      }
    }
    return undefined;
  }

  logTail(region: string): string {
    return (this.recent.get(region) ?? []).slice(-10).join("\n") || "(none)";
  }

  /** Warnings and errors the replicas logged so far, one summary line per region. */
  problemSummary(): string[] {
    return [...this.problemLines.entries()]
      .filter(([, lines]) => lines.length > 0)
      .map(
        ([region, lines]) =>
          `replica ${region} logged ${lines.length}${lines.length >= 20 ? "+" : ""} warning/error line(s); first: ${lines[0]}`,
      );
  }

  /** SIGTERM every replica (SIGKILL after a grace period), close the links, remove the folder. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (const client of this.clients.values()) client.close();
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), stopGraceMs);
      });
      const outcome = await Promise.race([
        this.cluster.stop().then(
          () => "stopped" as const,
          () => "timeout" as const,
        ),
        graceOver,
      ]);
      clearTimeout(timer);
      if (outcome === "timeout") {
        await Promise.all(
          [...this.cluster.replicas.values()].map((replica) => replica.process.kill9()),
        );
        await Promise.all([...this.cluster.links.values()].map((link) => link.close()));
      }
      await rm(this.dir, { recursive: true, force: true });
      live.delete(this);
    })();
    return this.stopping;
  }

  /** Synchronous SIGKILL and folder removal, for exit paths that cannot await. */
  killNow(): void {
    for (const replica of this.cluster.replicas.values()) {
      const child = replica.process.child;
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
    rmSync(this.dir, { recursive: true, force: true });
    live.delete(this);
  }
}

/** Stops every cluster still running (signal handlers). */
export async function stopAllClusters(): Promise<void> {
  await Promise.all([...live].map((cluster) => cluster.stop()));
}

/** SIGKILLs every cluster still running (process exit). */
export function killAllClustersNow(): void {
  for (const cluster of [...live]) cluster.killNow();
}
