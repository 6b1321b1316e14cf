// Geo-replication of one replica: follows every peer's feed, serves its own feed to them,
// fetches blobs, runs anti-entropy and reports status. Built by the composition root on
// top of the registry core, which it reaches only through the remote-apply path and the
// commit listeners.
import { join } from "node:path";
import type { Logger } from "pino";
import type { Registry as MetricsRegistry } from "prom-client";
import type { ApiExtension } from "../api/api-server.ts";
import type { Registry } from "../registry/registry.ts";
import { AntiEntropy } from "./anti-entropy.ts";
import { BlobFetcher } from "./blob-fetcher.ts";
import { ChangeWaiter } from "./change-waiter.ts";
import { CheckpointStore } from "./checkpoint-store.ts";
import { createPeerApi } from "./peer-api.ts";
import { PeerClient, type PeerEndpoint } from "./peer-client.ts";
import { PeerContentSource } from "./peer-content-source.ts";
import { PeerFollower } from "./peer-follower.ts";
import { ReplicationMetrics } from "./replication-metrics.ts";
import { computeStatus, type ReplicationStatus } from "./replication-status.ts";

export interface ReplicatorOptions {
  region: string;
  peers: PeerEndpoint[];
  secret: string;
  dataDir: string;
  registry: Registry;
  metrics: MetricsRegistry;
  log: Logger;
  antiEntropyIntervalMs: number;
  pollWaitMs?: number;
  /** How long peers have to say whether they hold content this replica lacks (default 1000). */
  readThroughTimeoutMs?: number;
}

export class Replicator {
  readonly peerApi: ApiExtension;
  private readonly followers: PeerFollower[];
  private readonly peers: PeerClient[];
  private readonly checkpoints: CheckpointStore;
  private readonly fetcher: BlobFetcher;
  private readonly antiEntropy: AntiEntropy;
  private everCaughtUp = false;

  private constructor(
    options: ReplicatorOptions,
    private readonly waiter: ChangeWaiter,
  ) {
    const metrics = new ReplicationMetrics(options.metrics);
    const peers = options.peers.map((endpoint) => new PeerClient(endpoint, options.secret));
    this.peers = peers;
    this.checkpoints = new CheckpointStore(join(options.dataDir, "replication.db"));
    this.fetcher = new BlobFetcher(options.registry.intake, peers, metrics);
    this.followers = peers.map(
      (peer) =>
        new PeerFollower({
          peer,
          peers,
          registry: options.registry,
          checkpoints: this.checkpoints,
          fetcher: this.fetcher,
          metrics,
          log: options.log,
          pollWaitMs: options.pollWaitMs,
        }),
    );
    this.antiEntropy = new AntiEntropy({
      registry: options.registry,
      peers,
      fetcher: this.fetcher,
      metrics,
      log: options.log,
      intervalMs: options.antiEntropyIntervalMs,
    });
    const followerOf = new Map(this.followers.map((f, i) => [peers[i], f]));
    options.registry.useContentSource(
      new PeerContentSource({
        peers,
        fetcher: this.fetcher,
        registry: options.registry,
        log: options.log,
        isReachable: (peer) => followerOf.get(peer)?.reachable ?? false,
        askTimeoutMs: options.readThroughTimeoutMs ?? 1000,
      }),
    );
    this.peerApi = createPeerApi({
      secret: options.secret,
      state: options.registry.state,
      waiter,
      reconcile: () => this.antiEntropy.runOnce(),
    });
  }

  static async create(options: ReplicatorOptions): Promise<Replicator> {
    const waiter = await ChangeWaiter.attach(options.registry.state);
    return new Replicator(options, waiter);
  }

  start(): void {
    for (const follower of this.followers) follower.start();
    this.antiEntropy.start();
  }

  status(): ReplicationStatus {
    const peers = this.followers.map((f) => f.syncState);
    const reachable = peers.filter((p) => p.connected);
    const caughtUp = reachable.length > 0 && reachable.every((p) => p.checkpoint >= p.head);
    if (caughtUp) this.everCaughtUp = true;
    return computeStatus(
      peers,
      this.fetcher.pendingBlobs,
      this.fetcher.pendingBytes,
      this.everCaughtUp,
    );
  }

  /** One anti-entropy round now (tests and the admin API). */
  reconcile(): Promise<number> {
    return this.antiEntropy.runOnce();
  }

  async stop(): Promise<void> {
    // Transfers in progress are abandoned first: a follower waiting for a large or stalled
    // blob would otherwise hold the shutdown.
    this.fetcher.close();
    await Promise.all(this.followers.map((f) => f.stop()));
    await this.antiEntropy.stop();
    // Their keep-alive connections would otherwise hold the peers' sockets (and this
    // process's handles) open after the replica stopped.
    for (const peer of this.peers) peer.close();
    this.waiter.detach();
    this.checkpoints.close();
  }
}
