// Geo-replication of one replica: follows every peer's feed, serves its own feed to them,
// fetches blobs, runs anti-entropy and reports status. Built by the composition root on
// top of the registry core, which it reaches only through the remote-apply path and the
// commit listeners.
import type { Logger } from "pino";
import type { Registry as MetricsRegistry } from "prom-client";
import type { ApiExtension } from "../api/api-server.ts";
import type { Registry } from "../registry/registry.ts";
import { AntiEntropy } from "./anti-entropy.ts";
import { BlobFetcher } from "./blob-fetcher.ts";
import { ChangeWaiter } from "./change-waiter.ts";
import type { CheckpointStore } from "./checkpoint-store.ts";
import type { FetchClaims } from "./fetch-claims.ts";
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
  /** Where each peer was applied up to (the replica opens and closes it). */
  checkpoints: CheckpointStore;
  /** Which of the replica's processes fetches a blob (none: this is its only process). */
  fetchClaims?: FetchClaims | undefined;
  registry: Registry;
  metrics: MetricsRegistry;
  log: Logger;
  antiEntropyIntervalMs: number;
  pollWaitMs?: number;
  /** How long peers have to say whether they hold content this replica lacks (default 1000). */
  readThroughTimeoutMs?: number;
  /**
   * Whether this process follows the peers (default true). The other workers of a replica
   * run as several leave it to the leader: they serve the feed and read through to the
   * peers, asking each one (they keep no follower to say which are reachable).
   */
  follows?: boolean;
}

/** How long a fresh replica gives each peer to answer when it looks for the nearest. */
const nearestProbeMs = 3_000;

export class Replicator {
  readonly peerApi: ApiExtension;
  /** Shared with the fetcher, the content source and anti-entropy, which read it live. */
  private readonly peers: PeerClient[] = [];
  private readonly followers = new Map<string, PeerFollower>();
  private readonly checkpoints: CheckpointStore;
  private readonly fetcher: BlobFetcher;
  private readonly antiEntropy: AntiEntropy;
  private readonly metrics: ReplicationMetrics;
  /** The counters' values when the transfer totals were last saved. */
  private readonly savedTransferred = new Map<string, number>();
  private transferSaver: NodeJS.Timeout | undefined;
  private everCaughtUp = false;
  private bootstrapped = false;
  private started = false;
  /** While a fresh replica copies the nearest peer's state: repositories left of how many. */
  private bootstrap: { region: string; left: number; total: number } | undefined;
  /** Set while the bootstrap runs: followers added meanwhile start after it. */
  private bootstrapping: Promise<void> | undefined;
  /** Whether this process follows the peers (the replica's leading node does). */
  private follows: boolean;

  private constructor(
    private readonly options: ReplicatorOptions,
    private readonly waiter: ChangeWaiter,
  ) {
    this.follows = options.follows ?? true;
    this.metrics = new ReplicationMetrics(options.metrics);
    this.checkpoints = options.checkpoints;
    this.fetcher = new BlobFetcher(
      options.registry.intake,
      this.peers,
      this.metrics,
      options.fetchClaims,
    );
    this.antiEntropy = new AntiEntropy({
      registry: options.registry,
      peers: this.peers,
      fetcher: this.fetcher,
      metrics: this.metrics,
      log: options.log,
      intervalMs: options.antiEntropyIntervalMs,
    });
    options.registry.useContentSource(
      new PeerContentSource({
        peers: this.peers,
        fetcher: this.fetcher,
        registry: options.registry,
        log: options.log,
        isReachable: (peer) =>
          !this.follows || (this.followers.get(peer.region)?.reachable ?? false),
        askTimeoutMs: options.readThroughTimeoutMs ?? 1000,
      }),
    );
    this.peerApi = createPeerApi({
      secret: options.secret,
      state: options.registry.state,
      waiter,
      reconcile: () => this.antiEntropy.runOnce(),
      drain: (region, timeoutMs) => this.drain(region, timeoutMs),
      // A peer that calls is up: its follower here stops waiting out a retry delay.
      heardFrom: (region) => this.followers.get(region)?.peerIsUp(),
    });
    this.setPeers(options.peers);
  }

  static async create(options: ReplicatorOptions): Promise<Replicator> {
    const waiter = await ChangeWaiter.attach(options.registry.state);
    return new Replicator(options, waiter);
  }

  /**
   * Starts following every peer. A replica that holds nothing yet (just created) first
   * copies the visible state of its nearest healthy peer, then follows that peer's feed
   * from the head it saw before the copy, and every other peer's from the start.
   */
  start(options: { bootstrap?: boolean } = {}): void {
    if (!this.follows) return;
    this.started = true;
    if (options.bootstrap && this.peers.length > 0) {
      this.bootstrapping = this.bootstrapFromNearest()
        .catch((error: unknown) =>
          this.options.log.info(
            { err: (error as Error).message },
            "no bootstrap copy; following the feeds instead",
          ),
        )
        .finally(() => {
          this.bootstrap = undefined;
          this.bootstrapping = undefined;
          if (this.started) for (const follower of this.followers.values()) follower.start();
        });
    } else {
      for (const follower of this.followers.values()) follower.start();
    }
    this.antiEntropy.start();
    this.transferSaver = setInterval(() => {
      this.saveTransferred().catch((error: unknown) =>
        this.options.log.warn({ err: error }, "could not save the transfer totals"),
      );
    }, 10_000);
    this.transferSaver.unref();
  }

  /** This node has become its replica's leader: it follows the peers from now on. */
  takeLead(): void {
    if (this.follows) return;
    this.follows = true;
    this.start();
  }

  /** Follows exactly these peers from now on: new ones start, gone ones stop. */
  setPeers(endpoints: readonly PeerEndpoint[]): void {
    const wanted = new Map(endpoints.map((e) => [e.region, e]));
    for (const peer of [...this.peers]) {
      const endpoint = wanted.get(peer.region);
      if (endpoint && endpoint.url.replace(/\/+$/, "") === peer.url) continue;
      this.removePeer(peer);
    }
    for (const endpoint of endpoints) {
      if (this.peers.some((p) => p.region === endpoint.region)) continue;
      const peer = new PeerClient(endpoint, this.options.secret, this.options.region);
      this.peers.push(peer);
      const follower = new PeerFollower({
        peer,
        peers: this.peers,
        registry: this.options.registry,
        checkpoints: this.checkpoints,
        fetcher: this.fetcher,
        metrics: this.metrics,
        log: this.options.log,
        pollWaitMs: this.options.pollWaitMs,
      });
      this.followers.set(peer.region, follower);
      if (this.started && !this.bootstrapping) follower.start();
      this.options.log.info({ peer: peer.region, url: peer.url }, "following a peer");
    }
  }

  private removePeer(peer: PeerClient): void {
    this.peers.splice(this.peers.indexOf(peer), 1);
    const follower = this.followers.get(peer.region);
    this.followers.delete(peer.region);
    this.options.log.info({ peer: peer.region }, "no longer following a peer");
    void follower?.stop().finally(() => peer.close());
  }

  private async bootstrapFromNearest(): Promise<void> {
    const probes = await Promise.all(
      this.peers.map(async (peer) => {
        const began = performance.now();
        const head = await peer.head(nearestProbeMs).catch(() => undefined);
        return head ? { peer, head, rttMs: performance.now() - began } : undefined;
      }),
    );
    const nearest = probes
      .filter((p): p is NonNullable<typeof p> => p !== undefined)
      .sort((a, b) => a.rttMs - b.rttMs)[0];
    if (!nearest) throw new Error("no peer answered");
    const { peer, head } = nearest;
    this.options.log.info({ peer: peer.region, head: head.head }, "bootstrapping from a peer");
    this.bootstrap = { region: peer.region, left: 0, total: 0 };
    await this.antiEntropy.reconcileWith(peer, (left, total) => {
      this.bootstrap = { region: peer.region, left, total };
    });
    // Everything up to the head seen before the copy is here now.
    await this.checkpoints.set(peer.region, head.head, head.log);
    this.bootstrapped = true;
    this.options.log.info({ peer: peer.region }, "bootstrap done; following every peer");
  }

  /** Resolves once every record `region` holds is here too; throws after `timeoutMs`. */
  private async drain(region: string, timeoutMs: number): Promise<void> {
    const peer = this.peers.find((p) => p.region === region);
    const follower = this.followers.get(region);
    if (!peer || !follower) throw new Error(`${region} is not a peer of this replica`);
    const deadline = Date.now() + timeoutMs;
    const { head } = await peer.head();
    // The feed first (cheap, in order), then one merge of the whole state for whatever
    // the feed could not apply.
    for (;;) {
      const state = follower.syncState;
      if (state.checkpoint >= head && this.fetcher.pendingBlobs === 0) break;
      if (Date.now() > deadline) throw new Error(`${region}: not drained in ${timeoutMs} ms`);
      await this.waiter.waitBeyond(await this.options.registry.state.headSeq(), 200);
    }
    await this.antiEntropy.reconcileWith(peer);
  }

  status(): ReplicationStatus {
    const peers = [...this.followers.values()].map((f) => f.syncState);
    const reachable = peers.filter((p) => p.connected);
    const caughtUp = reachable.length > 0 && reachable.every((p) => p.checkpoint >= p.head);
    if (caughtUp) this.everCaughtUp = true;
    const status = computeStatus(
      peers,
      this.fetcher.pendingBlobs,
      this.fetcher.pendingBytes,
      // After a bootstrap copy the replica holds a whole snapshot: Syncing, not Creating.
      this.everCaughtUp || this.bootstrapped,
    );
    const secondsLeft = this.fetcher.rate.secondsFor(status.pending.bytes);
    const rate = Math.round(this.fetcher.rate.bytesPerSecond());
    if (this.bootstrap) {
      return {
        ...status,
        status: "Syncing",
        pending: { ...status.pending, repositories: this.bootstrap.left },
        bootstrap: { from: this.bootstrap.region, ...this.bootstrap },
        bytesPerSecond: rate,
        secondsLeft,
      };
    }
    return { ...status, bytesPerSecond: rate, secondsLeft };
  }

  /** Blob bytes received here from each peer over this replica's life (egress there). */
  async receivedBytes(): Promise<Record<string, number>> {
    await this.saveTransferred();
    return this.checkpoints.transferred();
  }

  /** Adds what the counters gained since the last save to the durable totals. */
  private async saveTransferred(): Promise<void> {
    const counted = await this.metrics.bytesReceived.get();
    const delta: Record<string, number> = {};
    for (const { labels, value } of counted.values) {
      const from = String(labels.source_region ?? "");
      if (!from) continue;
      delta[from] = value - (this.savedTransferred.get(from) ?? 0);
      this.savedTransferred.set(from, value);
    }
    await this.checkpoints.addTransferred(delta);
  }

  /** Anti-entropy rounds every `ms` from now on. */
  setAntiEntropyInterval(ms: number): void {
    this.antiEntropy.setInterval(ms);
  }

  /** One anti-entropy round now (tests and the admin API). */
  reconcile(): Promise<number> {
    return this.antiEntropy.runOnce();
  }

  async stop(): Promise<void> {
    this.started = false;
    // Transfers in progress are abandoned first: a follower waiting for a large or stalled
    // blob would otherwise hold the shutdown.
    this.fetcher.close();
    const bootstrapping = this.bootstrapping;
    await Promise.all([...this.followers.values()].map((f) => f.stop()));
    await bootstrapping;
    await this.antiEntropy.stop();
    clearInterval(this.transferSaver);
    await this.saveTransferred().catch(() => undefined);
    // Their keep-alive connections would otherwise hold the peers' sockets (and this
    // process's handles) open after the replica stopped.
    for (const peer of this.peers) peer.close();
    this.waiter.detach();
  }
}
