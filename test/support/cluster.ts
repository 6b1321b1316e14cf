// A whole multi-region Meridian on loopback for end-to-end tests: picks free ports, writes
// a topology file into a temp folder, starts every replica as its own process through
// LocalCluster (with WAN links when asked), and offers the probes the replication tests
// need: state digests, metrics, status, and a convergence wait with a deadline.
import { once } from "node:events";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { stringify as toYaml } from "yaml";
import { LocalCluster } from "../../src/cluster/local-cluster.ts";
import { startSupervisedCluster } from "../../src/cluster/supervised-cluster.ts";
import type { Config } from "../../src/config/config-schema.ts";
import { loadConfig } from "../../src/config/load-config.ts";
import type { ReplicaStatusReport } from "../../src/replication/status-endpoint.ts";
import { waitFor } from "./wait-for.ts";

export interface TestClusterOptions {
  /** Regions of the catalogue (src/geo/regions.ts); the first is the home replica. */
  regions: readonly string[];
  /** WAN emulation between the replicas (a link per ordered pair). */
  wan?: { rttMs?: number; bytesPerSecond?: number };
  antiEntropySeconds?: number;
  /** How long a feed request waits for new records (default 5000). */
  pollWaitMs?: number;
  /** Log level of the replicas (default warn). */
  logLevel?: "fatal" | "error" | "warn" | "info" | "debug";
  /** The topology's `globalEndpoint` section (for an endpoint hosted by a replica). */
  globalEndpoint?: Record<string, unknown>;
  /**
   * Under the local supervisor, as `meridian up` runs them: `replication create|delete`
   * start and stop replica processes, and a replica that exits is restarted.
   */
  supervised?: boolean;
  /** The topology's `gc` section (garbage collection). */
  gc?: { graceSeconds?: number; intervalSeconds?: number };
  /** Environment variables of every replica process (test hooks). */
  env?: Record<string, string>;
  /** Sees every output line of every replica as well (the bench collects warnings). */
  onLine?: (region: string, line: string) => void;
}

export interface TestCluster {
  readonly cluster: LocalCluster;
  readonly regions: readonly string[];
  /** The topology file every replica reads. */
  readonly configFile: string;
  readonly config: Config;
  readonly secret: string;
  /** The temp folder with the topology file and every replica's data. */
  readonly dir: string;
  /** Base URL of the regional endpoint, e.g. http://127.0.0.1:41234. */
  url(region: string): string;
  /** host:port of the regional endpoint, the form skopeo's docker:// references want. */
  host(region: string): string;
  /** The repository's state digest in the region (peer API, with the replication secret). */
  stateDigest(region: string, repository: string): Promise<string>;
  /**
   * Whether the region itself links the blob into the repository and holds its bytes (peer
   * API): unlike a HEAD on the registry API, this never reads through to the peers.
   */
  hasLocalBlob(region: string, repository: string, digest: string): Promise<boolean>;
  /** The region's /metrics text. */
  metrics(region: string): Promise<string>;
  /** Sum of every sample of `name` whose labels include `labels` (0 when absent). */
  metric(region: string, name: string, labels?: Record<string, string>): Promise<number>;
  /** The region's GET /_meridian/status. */
  status(region: string): Promise<ReplicaStatusReport>;
  /** Runs one anti-entropy round in the region now; returns how many repositories it repaired. */
  reconcile(region: string): Promise<number>;
  /**
   * Waits until every region has applied every record of every peer's change log (each
   * follower's checkpoint equals its peer's head, twice in a row).
   */
  waitQuiescent(timeoutMs?: number): Promise<void>;
  /**
   * Waits until the repository's state digest is the same in every region of `regions`
   * and the repository is not empty there; returns that digest. With `allowEmpty`, an
   * empty state is accepted as long as every region knows the repository.
   */
  waitConverged(
    repository: string,
    regions?: readonly string[],
    timeoutMs?: number,
    options?: { allowEmpty?: boolean },
  ): Promise<string>;
  /** The last log lines of every replica, for failure messages. */
  logs(): string;
  /** Stops every replica and WAN link and removes the temp folder. */
  dispose(): Promise<void>;
}

/**
 * Declares a test whose failure message ends with every replica's recent log lines: the
 * first thing to read when a multi-region test fails.
 */
export function clusterTest(
  cluster: () => TestCluster | undefined,
  name: string,
  body: () => Promise<void>,
  timeoutMs = 120_000,
): void {
  it(name, { timeout: timeoutMs }, async () => {
    try {
      await body();
    } catch (error) {
      const running = cluster();
      if (error instanceof Error && running) error.message += `\n${running.logs()}`;
      throw error;
    }
  });
}

/** The state digest of a repository with no live tag and no manifest. */
export const emptyStateDigest =
  "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

const keptLogLines = 40;

/** Picks `count` distinct free loopback ports (all held open at once, then released). */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i += 1) {
      const server = createServer();
      servers.push(server);
      server.listen(0, "127.0.0.1");
      await once(server, "listening");
      const address = server.address();
      if (address === null || typeof address === "string") throw new Error("no TCP port");
      ports.push(address.port);
    }
    return ports;
  } finally {
    await Promise.all(
      servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
    );
  }
}

/**
 * Node 20 never closes a socket that resetAndDestroy() reaches while its end() is still
 * being flushed (libuv refuses the reset with EINVAL and Node marks the handle closing
 * anyway), and a process holding such a socket spins forever in its exit-time handle
 * cleanup. The WAN links (src/wan/wan-connection.ts resetSocket) can do exactly that when
 * a link is cut or a replica dies right after a half-close. Once the test process is
 * exiting, nothing is left to run: leaving through process.exit skips that cleanup.
 */
let exitGuardInstalled = false;
function installExitGuard(): void {
  if (exitGuardInstalled) return;
  exitGuardInstalled = true;
  process.once("exit", () => process.exit());
}

export async function startTestCluster(options: TestClusterOptions): Promise<TestCluster> {
  if (options.regions.length === 0) throw new Error("a cluster needs at least one region");
  if (options.wan) installExitGuard();
  // The ports are free when picked but not reserved: another process may take one before
  // its replica binds it. Such a start fails cleanly and is tried again on new ports.
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await startOnce(options);
    } catch (error) {
      if (attempt >= 3 || !String((error as Error).message).includes("EADDRINUSE")) throw error;
    }
  }
}

async function startOnce(options: TestClusterOptions): Promise<TestCluster> {
  const { regions } = options;
  const dir = await mkdtemp(join(tmpdir(), "meridian-cluster-"));
  const secret = "test-secret-0123456789abcdef";
  const logs = new Map<string, string[]>(regions.map((r) => [r, []]));
  try {
    const ports = await freePorts(regions.length);
    const replicas = regions.map((region, i) => ({
      region,
      ...(i === 0 ? { home: true } : {}),
      listen: `127.0.0.1:${ports[i]}`,
      data: join(dir, region),
    }));
    for (const replica of replicas) await mkdir(replica.data, { recursive: true });
    const topology: Record<string, unknown> = {
      replication: {
        secret,
        antiEntropySeconds: options.antiEntropySeconds ?? 2,
        pollWaitMs: options.pollWaitMs ?? 5000,
      },
      replicas,
      log: { level: options.logLevel ?? "warn" },
    };
    if (options.globalEndpoint) topology.globalEndpoint = options.globalEndpoint;
    if (options.gc) topology.gc = options.gc;
    if (options.wan) {
      topology.wan = {
        rttMs: options.wan.rttMs ?? 0,
        ...(options.wan.bytesPerSecond ? { bytesPerSecond: options.wan.bytesPerSecond } : {}),
      };
    }
    const configFile = join(dir, "meridian.yaml");
    await writeFile(configFile, toYaml(topology));
    const config = await loadConfig({ file: configFile, env: {} }, { topologyOnly: true });
    const verbose = process.env.MERIDIAN_TEST_LOGS === "1";
    const onLine = (region: string, line: string) => {
      const kept = logs.get(region) ?? [];
      logs.set(region, kept);
      kept.push(line);
      if (kept.length > keptLogLines) kept.shift();
      if (verbose) process.stderr.write(`[${region}] ${line}\n`);
      options.onLine?.(region, line);
    };
    const env = { MERIDIAN_LOG_LEVEL: options.logLevel ?? "warn", ...options.env };
    // Either start stops whatever it started when one replica fails to start.
    if (options.supervised) {
      const supervised = await startSupervisedCluster({
        configFile,
        config,
        dataRoot: dir,
        env,
        onLine,
        onEvent: (region, message) => onLine(region, `[supervisor] ${message}`),
      });
      return makeTestCluster({
        cluster: supervised.cluster,
        regions,
        configFile,
        config,
        secret,
        dir,
        logs,
        afterStop: () => supervised.stop(),
      });
    }
    const cluster = await LocalCluster.start({ configFile, config, env, onLine });
    return makeTestCluster({ cluster, regions, configFile, config, secret, dir, logs });
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

function makeTestCluster(parts: {
  cluster: LocalCluster;
  regions: readonly string[];
  configFile: string;
  config: Config;
  secret: string;
  dir: string;
  logs: Map<string, string[]>;
  /** Runs after the replicas stopped (the supervisor's own shutdown). */
  afterStop?: () => Promise<void>;
}): TestCluster {
  const { cluster, regions, secret } = parts;
  const url = (region: string): string => cluster.replica(region).url;
  const peerGet = async (region: string, path: string): Promise<unknown> => {
    const response = await fetch(`${url(region)}/_meridian/replication/${path}`, {
      headers: { Authorization: `Bearer ${secret}` },
      signal: AbortSignal.timeout(5_000),
    });
    const text = await response.text();
    if (response.status !== 200) throw new Error(`${region} ${path}: ${response.status} ${text}`);
    return JSON.parse(text);
  };
  const stateDigest = async (region: string, repository: string): Promise<string> => {
    const body = (await peerGet(region, `state?repository=${encodeURIComponent(repository)}`)) as {
      digest: string;
    };
    return body.digest;
  };
  const hasLocalBlob = async (region: string, repository: string, digest: string) => {
    const query = `repository=${encodeURIComponent(repository)}&digest=${encodeURIComponent(digest)}`;
    const response = await fetch(`${url(region)}/_meridian/replication/link?${query}`, {
      headers: { Authorization: `Bearer ${secret}` },
      signal: AbortSignal.timeout(5_000),
    });
    const text = await response.text();
    if (response.status !== 200 && response.status !== 404) {
      throw new Error(`${region} link ${digest}: ${response.status} ${text}`);
    }
    return response.status === 200;
  };
  const metrics = async (region: string): Promise<string> => {
    const response = await fetch(`${url(region)}/metrics`, { signal: AbortSignal.timeout(5_000) });
    if (response.status !== 200) throw new Error(`${region} /metrics: ${response.status}`);
    return response.text();
  };
  const status = async (region: string): Promise<ReplicaStatusReport> => {
    const response = await fetch(`${url(region)}/_meridian/status`, {
      signal: AbortSignal.timeout(5_000),
    });
    if (response.status !== 200) throw new Error(`${region} status: ${response.status}`);
    return (await response.json()) as ReplicaStatusReport;
  };
  let lastQuiescence = "";
  const quiescent = async (): Promise<boolean> => {
    const heads = new Map<string, number>();
    for (const region of regions) {
      const page = (await peerGet(region, "feed?since=0&limit=1&wait=0")) as { head: number };
      heads.set(region, page.head);
    }
    const views: string[] = [];
    let done = true;
    for (const region of regions) {
      const report = await status(region);
      for (const peer of report.peers) {
        views.push(`${region}<-${peer.region} ${peer.checkpoint}/${heads.get(peer.region)}`);
        if (!peer.connected || peer.checkpoint !== heads.get(peer.region)) done = false;
      }
    }
    lastQuiescence = views.join(", ");
    return done;
  };
  const logs = (): string =>
    [...parts.logs.entries()]
      .map(
        ([region, lines]) => `--- ${region} (last ${lines.length} lines) ---\n${lines.join("\n")}`,
      )
      .join("\n");

  return {
    cluster,
    regions,
    configFile: parts.configFile,
    config: parts.config,
    secret,
    dir: parts.dir,
    url,
    host: (region) => new URL(url(region)).host,
    stateDigest,
    hasLocalBlob,
    metrics,
    metric: async (region, name, labels = {}) => sumSamples(await metrics(region), name, labels),
    status,
    reconcile: async (region) => {
      const response = await fetch(`${url(region)}/_meridian/replication/anti-entropy`, {
        method: "POST",
        headers: { Authorization: `Bearer ${secret}` },
        signal: AbortSignal.timeout(60_000),
      });
      const text = await response.text();
      if (response.status !== 200)
        throw new Error(`${region} anti-entropy: ${response.status} ${text}`);
      return (JSON.parse(text) as { repaired: number }).repaired;
    },
    waitQuiescent: async (timeoutMs = 30_000) => {
      let streak = 0;
      try {
        await waitFor(
          async () => {
            streak = (await quiescent().catch(() => false)) ? streak + 1 : 0;
            return streak >= 2;
          },
          "every region to apply every peer's records",
          timeoutMs,
          100,
        );
      } catch (error) {
        throw new Error(`${(error as Error).message}\nlast seen: ${lastQuiescence}`);
      }
    },
    waitConverged: async (repository, among = regions, timeoutMs = 30_000, options = {}) => {
      let last: Record<string, string> = {};
      let agreed = "";
      try {
        await waitFor(
          async () => {
            const digests = await Promise.all(
              among.map((region) => stateDigest(region, repository).catch((e: Error) => e.message)),
            );
            last = Object.fromEntries(among.map((region, i) => [region, digests[i] ?? ""]));
            const first = digests[0];
            if (first === undefined || !first.startsWith("sha256:")) return false;
            if (!digests.every((d) => d === first)) return false;
            if (first === emptyStateDigest) {
              if (!options.allowEmpty) return false;
              const known = await Promise.all(
                among.map(async (region) => {
                  const body = (await peerGet(region, "repositories")) as {
                    repositories: string[];
                  };
                  return body.repositories.includes(repository);
                }),
              );
              if (!known.every(Boolean)) return false;
            }
            agreed = first;
            return true;
          },
          `${repository} to converge in ${among.join(", ")}`,
          timeoutMs,
          100,
        );
      } catch (error) {
        throw new Error(
          `${(error as Error).message}\nlast state digests: ${JSON.stringify(last, null, 2)}\n${logs()}`,
        );
      }
      return agreed;
    },
    logs,
    dispose: async () => {
      await stopCluster(cluster);
      await parts.afterStop?.();
      await rm(parts.dir, { recursive: true, force: true });
    },
  };
}

/**
 * Stops every replica gracefully (SIGTERM) but gives up waiting after a deadline and kills
 * what is left, so that a replica that hangs in shutdown cannot hang the test run.
 */
async function stopCluster(cluster: LocalCluster, graceMs = 10_000): Promise<void> {
  // A supervised cluster must not restart the replicas stopped here.
  cluster.beginStop();
  await Promise.all([...cluster.links.values()].map((link) => link.close()));
  await Promise.all(
    [...cluster.replicas.values()].map(async ({ process: replica }) => {
      const stopped = replica.stop().then(() => true);
      const late = delay(graceMs, false, { ref: false });
      if (!(await Promise.race([stopped, late]))) await replica.kill9();
    }),
  );
  await cluster.stop();
}

/** Sums the samples of one metric in Prometheus text format, filtered by labels. */
export function sumSamples(text: string, name: string, labels: Record<string, string> = {}) {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match || match[1] !== name) continue;
    const sampleLabels = Object.fromEntries(
      [...(match[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((m) => [
        m[1],
        m[2],
      ]),
    );
    if (Object.entries(labels).every(([key, value]) => sampleLabels[key] === value)) {
      sum += Number(match[3]);
    }
  }
  return sum;
}
