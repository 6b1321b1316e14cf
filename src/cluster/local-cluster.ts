// Runs a whole registry on one machine: every replica of the topology as its own
// process, and, when WAN emulation is on, a WAN link for each ordered pair of replicas
// through which the first reaches the second (so that links can be slowed or cut one
// direction at a time). `meridian up` and the multi-region tests use it.
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Config, ReplicaEntry } from "../config/config-schema.ts";
import { parseListenAddress } from "../config/listen-address.ts";
import { replicaEndpoint } from "../config/load-config.ts";
import { WanLink } from "../wan/wan-link.ts";
import { type ReplicaProcess, startReplicaProcess } from "./replica-process.ts";

export interface LocalClusterOptions {
  /** The topology file every replica reads. */
  configFile: string;
  /** The same file, loaded. */
  config: Config;
  /** Extra environment for every replica (log level, ...). */
  env?: NodeJS.ProcessEnv;
  onLine?: (region: string, line: string) => void;
  /** Restart a replica whose process exits unexpectedly, with backoff (`meridian up`). */
  restartOnExit?: boolean;
  /** Notable events: a replica exited, restarted, was added or removed. */
  onEvent?: (region: string, message: string) => void;
  /** Replicas beyond the file's, added earlier (`replication create`) and kept since. */
  added?: ReplicaEntry[];
  /** Regions of the file deleted earlier (`replication delete`): not started. */
  removed?: string[];
}

/** The first restart waits this long; each further one doubles it, up to the maximum. */
const restartBaseMs = 500;
const restartMaxMs = 30_000;
/** A replica that ran this long counts as healthy again: its next restart is quick. */
const healthyAfterMs = 60_000;

export interface RunningReplicaProcess {
  entry: ReplicaEntry;
  /** The regional endpoint clients use. */
  url: string;
  process: ReplicaProcess;
}

export class LocalCluster {
  private stopping = false;
  private readonly restarts = new Map<string, { attempts: number; timer?: NodeJS.Timeout }>();

  private constructor(
    readonly replicas: Map<string, RunningReplicaProcess>,
    /** WAN links by "from->to". */
    readonly links: Map<string, WanLink>,
    private readonly options: LocalClusterOptions,
    private readonly secret: string,
    /** Shared by every replica, so that a token issued in one region works in all. */
    private readonly signingKey: string,
    /** The replicas of the cluster now: the file's, plus those added, minus those removed. */
    private readonly entries: ReplicaEntry[],
    /** Where each replica's routes file ({region: url through its WAN link}) is kept. */
    private readonly routesDir: string,
  ) {}

  static async start(options: LocalClusterOptions): Promise<LocalCluster> {
    const removed = new Set(options.removed ?? []);
    const entries = [
      ...(options.config.replicas ?? []).filter((e) => !removed.has(e.region)),
      ...(options.added ?? []),
    ];
    const secret = options.config.replication.secret ?? randomBytes(24).toString("hex");
    const signingKey = options.config.auth.signingKey ?? randomBytes(32).toString("hex");
    const links = new Map<string, WanLink>();
    const routesDir = await mkdtemp(join(tmpdir(), "meridian-routes-"));
    const cluster = new LocalCluster(
      new Map(),
      links,
      options,
      secret,
      signingKey,
      entries,
      routesDir,
    );
    try {
      for (const from of entries) {
        for (const to of entries) await cluster.linkPair(from, to);
      }
      await cluster.writeRoutes();
      // Every start is waited for, failed or not: a replica still starting when another
      // fails would otherwise join the cluster after stop() ran and outlive it.
      const started = await Promise.allSettled(
        entries.map((entry) => cluster.startReplica(entry.region)),
      );
      const failed = started.find((r): r is PromiseRejectedResult => r.status === "rejected");
      if (failed) throw failed.reason;
      return cluster;
    } catch (error) {
      await cluster.stop();
      throw error;
    }
  }

  /** The replicas of the cluster now. */
  get topology(): readonly ReplicaEntry[] {
    return this.entries;
  }

  /** Starts (or restarts, after a stop or a kill) the replica of `region`. */
  async startReplica(region: string): Promise<RunningReplicaProcess> {
    const entry = this.entries.find((e) => e.region === region);
    if (!entry) throw new Error(`no replica in region ${region}`);
    const env: NodeJS.ProcessEnv = {
      ...this.options.env,
      MERIDIAN_REPLICATION_SECRET: this.secret,
      // Every replica signs and checks tokens with the same key, so that a token issued in
      // one region works in all (without it a topology with users could not start).
      MERIDIAN_TOKEN_SIGNING_KEY: this.signingKey,
      MERIDIAN_PEER_ROUTES: this.routesFile(region),
    };
    for (const peer of this.entries) {
      const link = this.links.get(`${region}->${peer.region}`);
      if (link) env[`MERIDIAN_PEER_${peer.region.toUpperCase().replace(/-/g, "_")}`] = link.url;
    }
    const inFile = (this.options.config.replicas ?? []).some((e) => e.region === region);
    // A replica added at run time is not in the file: its address and folder are given.
    const args = inFile
      ? ["--config", this.options.configFile, "--region", region]
      : [
          "--config",
          this.options.configFile,
          "--region",
          region,
          "--listen",
          entry.listen,
          "--data",
          entry.data,
        ];
    const process = await startReplicaProcess({
      args,
      env,
      onLine: (line) => this.options.onLine?.(region, line),
    });
    const running = { entry, url: replicaEndpoint(entry), process };
    this.replicas.set(region, running);
    if (this.options.restartOnExit) this.watchExit(running);
    return running;
  }

  /**
   * Adds a replica for `region` on a free port with its own data folder, its WAN links to
   * and from every other replica, and starts it (without waiting for it to listen).
   */
  async addReplica(request: {
    region: string;
    dataRoot: string;
    latitude?: number | undefined;
    longitude?: number | undefined;
  }): Promise<ReplicaEntry> {
    if (this.entries.some((e) => e.region === request.region)) {
      throw new Error(`a replica in ${request.region} runs already`);
    }
    const port = await freePort();
    const entry: ReplicaEntry = {
      region: request.region,
      home: false,
      listen: `127.0.0.1:${port}`,
      data: join(request.dataRoot, request.region),
      globalEndpointRouting: true,
      ...(request.latitude !== undefined ? { latitude: request.latitude } : {}),
      ...(request.longitude !== undefined ? { longitude: request.longitude } : {}),
    };
    this.entries.push(entry);
    for (const other of this.entries) {
      await this.linkPair(entry, other);
      await this.linkPair(other, entry);
    }
    await this.writeRoutes();
    this.options.onEvent?.(entry.region, `added on ${entry.listen}`);
    this.startReplica(entry.region).catch((error: unknown) =>
      this.options.onEvent?.(entry.region, `could not start: ${(error as Error).message}`),
    );
    return entry;
  }

  /** Stops the replica of `region`, closes its links and deletes its data folder. */
  async removeReplica(region: string): Promise<void> {
    const index = this.entries.findIndex((e) => e.region === region);
    if (index === -1) return;
    const [entry] = this.entries.splice(index, 1);
    const restart = this.restarts.get(region);
    clearTimeout(restart?.timer);
    this.restarts.delete(region);
    const running = this.replicas.get(region);
    this.replicas.delete(region);
    await running?.process.stop();
    for (const [key, link] of this.links) {
      const [from, to] = key.split("->");
      if (from !== region && to !== region) continue;
      this.links.delete(key);
      await link.close();
    }
    await this.writeRoutes();
    if (entry) await rm(resolve(entry.data), { recursive: true, force: true });
    this.options.onEvent?.(region, "removed, its data deleted");
  }

  replica(region: string): RunningReplicaProcess {
    const replica = this.replicas.get(region);
    if (!replica) throw new Error(`replica ${region} is not running`);
    return replica;
  }

  link(from: string, to: string): WanLink {
    const link = this.links.get(`${from}->${to}`);
    if (!link) throw new Error(`no WAN link ${from}->${to} (is wan configured?)`);
    return link;
  }

  /** Cuts both directions between two regions. */
  cut(a: string, b: string): void {
    this.link(a, b).cut();
    this.link(b, a).cut();
  }

  /** Blackholes both directions between two regions (see WanLink.blackhole). */
  blackhole(a: string, b: string): void {
    this.link(a, b).blackhole();
    this.link(b, a).blackhole();
  }

  heal(a: string, b: string): void {
    this.link(a, b).heal();
    this.link(b, a).heal();
  }

  private watchExit(running: RunningReplicaProcess): void {
    const region = running.entry.region;
    const startedAt = Date.now();
    running.process.child.once("exit", (code, signal) => {
      if (this.stopping || this.replicas.get(region) !== running) return;
      const state = this.restarts.get(region) ?? { attempts: 0 };
      if (Date.now() - startedAt > healthyAfterMs) state.attempts = 0;
      const delayMs = Math.min(restartMaxMs, restartBaseMs * 2 ** state.attempts);
      state.attempts += 1;
      this.restarts.set(region, state);
      this.options.onEvent?.(
        region,
        `exited unexpectedly (${signal ?? `code ${code}`}); restarting in ${delayMs} ms`,
      );
      state.timer = setTimeout(() => {
        if (this.stopping || !this.entries.some((e) => e.region === region)) return;
        this.startReplica(region).then(
          () => this.options.onEvent?.(region, "restarted"),
          (error: unknown) => {
            this.options.onEvent?.(
              region,
              `restart failed: ${(error as Error).message.split("\n")[0]}`,
            );
          },
        );
      }, delayMs);
    });
  }

  private async linkPair(from: ReplicaEntry, to: ReplicaEntry): Promise<void> {
    const wan = this.options.config.wan;
    const key = `${from.region}->${to.region}`;
    if (!wan || from === to || this.links.has(key)) return;
    const target = parseListenAddress(to.listen);
    const link = await WanLink.start({
      target: { host: target.host, port: target.port },
      rttMs: wan.rttMs,
      bytesPerSecond: wan.bytesPerSecond,
      name: key,
    });
    this.links.set(key, link);
  }

  private routesFile(region: string): string {
    return join(this.routesDir, `${region}.json`);
  }

  /** Each replica's routes to the others through its WAN links, replaced atomically. */
  private async writeRoutes(): Promise<void> {
    await mkdir(this.routesDir, { recursive: true });
    for (const from of this.entries) {
      const routes: Record<string, string> = {};
      for (const to of this.entries) {
        const link = this.links.get(`${from.region}->${to.region}`);
        if (link) routes[to.region] = link.url;
      }
      const file = this.routesFile(from.region);
      await writeFile(`${file}.tmp`, JSON.stringify(routes));
      await rename(`${file}.tmp`, file);
    }
  }

  /** From now on no replica is restarted (their processes are about to be stopped). */
  beginStop(): void {
    this.stopping = true;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const restart of this.restarts.values()) clearTimeout(restart.timer);
    // Links first: a link that outlives the replicas forwards each stopping replica's
    // half-close and then resets the socket while that shutdown is still pending, which
    // Node 20 refuses (EINVAL) and answers by never closing the socket, so that the
    // process that runs the links cannot exit. Closing them while every replica still
    // runs resets connections that have no shutdown in flight.
    await Promise.all([...this.links.values()].map((l) => l.close()));
    await Promise.all([...this.replicas.values()].map((r) => r.process.stop()));
    await rm(this.routesDir, { recursive: true, force: true });
  }
}

/** A port free on loopback now (the replica binds it a moment later). */
function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => done(port));
    });
  });
}
