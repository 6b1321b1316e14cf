// Runs a whole registry on one machine: every replica of the topology as its own
// process, and, when WAN emulation is on, a WAN link for each ordered pair of replicas
// through which the first reaches the second (so that links can be slowed or cut one
// direction at a time). `meridian up` and the multi-region tests use it.
import { randomBytes } from "node:crypto";
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
}

export interface RunningReplicaProcess {
  entry: ReplicaEntry;
  /** The regional endpoint clients use. */
  url: string;
  process: ReplicaProcess;
}

export class LocalCluster {
  private constructor(
    readonly replicas: Map<string, RunningReplicaProcess>,
    /** WAN links by "from->to". */
    readonly links: Map<string, WanLink>,
    private readonly options: LocalClusterOptions,
    private readonly secret: string,
    /** Shared by every replica, so that a token issued in one region works in all. */
    private readonly signingKey: string,
  ) {}

  static async start(options: LocalClusterOptions): Promise<LocalCluster> {
    const entries = options.config.replicas ?? [];
    const secret = options.config.replication.secret ?? randomBytes(24).toString("hex");
    const signingKey = options.config.auth.signingKey ?? randomBytes(32).toString("hex");
    const links = new Map<string, WanLink>();
    const cluster = new LocalCluster(new Map(), links, options, secret, signingKey);
    try {
      if (options.config.wan) {
        for (const from of entries) {
          for (const to of entries) {
            if (from === to) continue;
            const target = parseListenAddress(to.listen);
            const link = await WanLink.start({
              target: { host: target.host, port: target.port },
              rttMs: options.config.wan.rttMs,
              bytesPerSecond: options.config.wan.bytesPerSecond,
              name: `${from.region}->${to.region}`,
            });
            links.set(`${from.region}->${to.region}`, link);
          }
        }
      }
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

  /** Starts (or restarts, after a stop or a kill) the replica of `region`. */
  async startReplica(region: string): Promise<RunningReplicaProcess> {
    const entries = this.options.config.replicas ?? [];
    const entry = entries.find((e) => e.region === region);
    if (!entry) throw new Error(`no replica in region ${region}`);
    const env: NodeJS.ProcessEnv = {
      ...this.options.env,
      MERIDIAN_REPLICATION_SECRET: this.secret,
      // Every replica signs and checks tokens with the same key, so that a token issued in
      // one region works in all (without it a topology with users could not start).
      MERIDIAN_TOKEN_SIGNING_KEY: this.signingKey,
    };
    for (const peer of entries) {
      const link = this.links.get(`${region}->${peer.region}`);
      if (link) env[`MERIDIAN_PEER_${peer.region.toUpperCase().replace(/-/g, "_")}`] = link.url;
    }
    const process = await startReplicaProcess({
      args: ["--config", this.options.configFile, "--region", region],
      env,
      onLine: (line) => this.options.onLine?.(region, line),
    });
    const running = { entry, url: replicaEndpoint(entry), process };
    this.replicas.set(region, running);
    return running;
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

  async stop(): Promise<void> {
    // Links first: a link that outlives the replicas forwards each stopping replica's
    // half-close and then resets the socket while that shutdown is still pending, which
    // Node 20 refuses (EINVAL) and answers by never closing the socket, so that the
    // process that runs the links cannot exit. Closing them while every replica still
    // runs resets connections that have no shutdown in flight.
    await Promise.all([...this.links.values()].map((l) => l.close()));
    await Promise.all([...this.replicas.values()].map((r) => r.process.stop()));
  }
}
