// Follows one peer's change feed: long-polls it from the durable checkpoint, applies each
// record through the registry's remote-apply path, and saves the checkpoint after it.
// Blobs named by a page are fetched ahead, in parallel, while records apply in order.
import { setTimeout as delay } from "node:timers/promises";
import type { Logger } from "pino";
import type { Digest } from "../oci/digest.ts";
import { parseStamp } from "../registry/hybrid-clock.ts";
import type { Registry } from "../registry/registry.ts";
import {
  type ContentFetcher,
  ContentUnavailableError,
  StampTooFarAheadError,
} from "../registry/replicated-change.ts";
import type { BlobFetcher } from "./blob-fetcher.ts";
import type { CheckpointStore } from "./checkpoint-store.ts";
import type { PeerClient } from "./peer-client.ts";
import type { ReplicationMetrics } from "./replication-metrics.ts";
import { type FeedPage, toChange, type WireRecord } from "./wire-format.ts";

export interface PeerFollowerOptions {
  peer: PeerClient;
  peers: readonly PeerClient[];
  registry: Registry;
  checkpoints: CheckpointStore;
  fetcher: BlobFetcher;
  metrics: ReplicationMetrics;
  log: Logger;
  /** How long one feed request may wait for new records. */
  pollWaitMs?: number;
  /** Blobs fetched ahead at once per peer. */
  prefetch?: number;
  /** Tries of a record whose content no peer has before it is left to anti-entropy (8). */
  maxApplyAttempts?: number;
  /** The first retry's delay; each further one doubles it (100 ms). */
  retryBaseMs?: number;
  /** Waits after a failed feed request: the first, and the longest as they double. */
  feedBackoffMs?: { first: number; max: number };
}

export interface PeerSyncState {
  region: string;
  /** Last seq of the peer applied here. */
  checkpoint: number;
  /** The peer's newest seq at the last answer. */
  head: number;
  /** Whether the last feed request succeeded. */
  connected: boolean;
  /** When the last feed request succeeded (ms since epoch), or 0. */
  lastContact: number;
  /** Age in seconds of the oldest change not yet applied (0 when caught up). */
  lagSeconds: number;
  lastError?: string | undefined;
}

const defaultMaxBackoffMs = 5_000;
const defaultFeedBackoff = { first: 100, max: defaultMaxBackoffMs };
/** A peer that calls often (blob fetches) cuts a retry wait short at most this often. */
const wakeEveryMs = 1_000;
/**
 * How long a peer that called is taken as reachable whatever this follower's requests
 * say: a replica starting up calls its peers before its own API listens, so the retry
 * its call sets off can fail while the replica is a moment from answering.
 */
const heardGraceMs = 5_000;
/** How long after start an unreachable peer is taken for one still starting (logged at debug). */
const startGraceMs = 15_000;

export class PeerFollower {
  private running = false;
  private loop: Promise<void> | undefined;
  private readonly abort = new AbortController();
  private readonly state: PeerSyncState;
  private readonly content: ContentFetcher;
  /** Identity of the peer's change log the checkpoint counts in. */
  private log: string | undefined;
  /** Whether the saved checkpoint was read (the first step of the loop). */
  private loaded = false;
  /** Whether a feed request has finished, answered or failed. */
  private tried = false;
  /** Set by peerIsUp: the next retry comes at once, its backoff from the start. */
  private woken = false;
  private lastWakeAt = 0;
  /** When the peer last called this replica (ms since epoch). */
  private heardAt = 0;
  /** Ends the retry wait in progress, if any. */
  private endWait: (() => void) | undefined;

  constructor(private readonly options: PeerFollowerOptions) {
    const { peer } = options;
    this.state = {
      region: peer.region,
      // Read from the store when the loop starts.
      checkpoint: 0,
      // Unknown until the peer first answers: the first request does not wait.
      head: -1,
      connected: false,
      lastContact: 0,
      lagSeconds: 0,
    };
    this.content = {
      ensureBlob: (digest) => options.fetcher.ensureBlob(digest, peer),
      fetchManifest: async (repository, digest) => {
        for (const source of [peer, ...options.peers.filter((p) => p !== peer)]) {
          const found = await source.manifest(repository, digest).catch(() => undefined);
          if (found) return found;
        }
        return undefined;
      },
    };
  }

  private get maxApplyAttempts(): number {
    return this.options.maxApplyAttempts ?? 8;
  }

  private get retryBaseMs(): number {
    return this.options.retryBaseMs ?? 100;
  }

  get syncState(): PeerSyncState {
    return { ...this.state };
  }

  /**
   * Whether the peer is worth asking for content now: its last feed request succeeded,
   * none has finished yet (a replica just started does not know, and asks), or the peer
   * called this replica a moment ago (peerIsUp).
   */
  get reachable(): boolean {
    return this.state.connected || !this.tried || Date.now() - this.heardAt < heardGraceMs;
  }

  /**
   * Told that the peer just called this replica (peer-api.ts, heardFrom): it is up. For a
   * few seconds it is worth asking for content again, and the next feed request goes now
   * instead of after the rest of its backoff. Without this, a replica back from an
   * outage was asked for nothing for up to 5 s: a manifest pushed to it in that time
   * answered 404 from its peers though it held it.
   */
  peerIsUp(): void {
    if (this.state.connected || !this.running) return;
    const now = Date.now();
    this.heardAt = now;
    if (now - this.lastWakeAt < wakeEveryMs) return;
    this.lastWakeAt = now;
    this.woken = true;
    this.endWait?.();
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.abort.abort();
    await this.loop;
  }

  private async run(): Promise<void> {
    const { peer, metrics, log } = this.options;
    const { first: firstBackoffMs, max: maxBackoffMs } =
      this.options.feedBackoffMs ?? defaultFeedBackoff;
    let backoff = firstBackoffMs;
    const startedAt = Date.now();
    let everReached = false;
    while (this.running) {
      try {
        if (!this.loaded) {
          const saved = await this.options.checkpoints.get(peer.region);
          this.state.checkpoint = saved.seq;
          this.log = saved.log;
          this.loaded = true;
        }
        // Pages come as the peer commits them; the next is on its way while this one is
        // applied. A page that starts the log over ends the stream: the next starts at 0.
        const pages = peer.feedStream(
          this.state.checkpoint,
          this.options.pollWaitMs ?? 25_000,
          this.abort.signal,
        );
        for await (const page of pages) {
          this.tried = true;
          this.state.connected = true;
          everReached = true;
          this.state.lastContact = Date.now();
          if (!(await this.take(page))) break;
          if (!this.running) return;
          backoff = firstBackoffMs;
          this.woken = false;
        }
      } catch (error) {
        if (!this.running) return;
        this.tried = true;
        this.state.connected = false;
        this.state.lastError = (error as Error).message;
        metrics.feedErrors.inc({ peer: peer.region });
        // Replicas started together come up in any order: a peer never reached yet is
        // not worth a warning until it has had time to start.
        const starting = !everReached && Date.now() - startedAt < startGraceMs;
        log[starting ? "debug" : "warn"](
          { peer: peer.region, err: error },
          starting ? "peer not reachable yet; retrying" : "replication feed failed; retrying",
        );
        await this.retryWait(this.woken ? firstBackoffMs : backoff);
        backoff = this.woken ? firstBackoffMs : Math.min(backoff * 2, maxBackoffMs);
        this.woken = false;
      }
    }
  }

  /** Waits `ms` before the next feed request, or less when stopped or woken. */
  private retryWait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.abort.signal.aborted) {
        resolve();
        return;
      }
      const done = () => {
        clearTimeout(timer);
        this.abort.signal.removeEventListener("abort", done);
        this.endWait = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.abort.signal.addEventListener("abort", done);
      this.endWait = done;
    });
  }

  /** Applies one page in order; false when it starts the peer's log over (from seq 0). */
  private async take(page: FeedPage): Promise<boolean> {
    const { peer, metrics, log } = this.options;
    if (page.log !== undefined && page.log !== this.log) {
      const known = this.log !== undefined;
      this.log = page.log;
      if (known || this.state.checkpoint > page.head) {
        // The peer's change log is not the one the checkpoint counts in (its data was
        // replaced): follow the new log from its start.
        log.warn({ peer: peer.region }, "peer's change log changed; following it from the start");
        this.state.checkpoint = 0;
        this.state.head = -1;
        await this.options.checkpoints.set(peer.region, 0, page.log);
        return false;
      }
    }
    this.state.head = page.head;
    this.state.lastError = undefined;
    this.updateLag(page.records[0]);
    this.prefetch(page.records);
    for (const record of page.records) {
      if (!this.running) return true;
      await this.applyWithRetry(record);
      this.state.checkpoint = record.seq;
      await this.options.checkpoints.set(peer.region, record.seq, this.log);
      metrics.recordsApplied.inc({ peer: peer.region });
    }
    this.updateLag(undefined);
    return true;
  }

  private async applyWithRetry(record: WireRecord): Promise<void> {
    const change = toChange(record);
    if (!change) return;
    for (let attempt = 1; ; attempt += 1) {
      try {
        const outcome = await this.options.registry.remote.apply(change, this.content);
        if (outcome === "tag-conflict") {
          this.options.metrics.tagConflicts.inc({ peer: this.options.peer.region });
        }
        return;
      } catch (error) {
        if (!this.running) throw error;
        if (error instanceof StampTooFarAheadError) {
          // Retrying cannot help before wall time catches up; the peer's other records go
          // on, and anti-entropy brings this one in once it is no longer ahead.
          this.options.metrics.stampsRefused.inc({ peer: this.options.peer.region });
          this.options.log.warn(
            { peer: this.options.peer.region, seq: record.seq, stamp: change.stamp },
            `refusing a change from ${this.options.peer.region}: ${error.message} (replication.maxClockSkewSeconds); is its clock right?`,
          );
          return;
        }
        if (
          attempt === 1 &&
          change.kind === "tag-put" &&
          error instanceof ContentUnavailableError &&
          (await this.learnDelete(change.repository, change.digest))
        ) {
          continue;
        }
        this.options.metrics.feedErrors.inc({ peer: this.options.peer.region });
        if (attempt >= this.maxApplyAttempts) {
          this.options.metrics.recordsGivenUp.inc({ peer: this.options.peer.region });
          this.options.log.error(
            { peer: this.options.peer.region, seq: record.seq, err: error },
            "giving up on a change; anti-entropy will repair it",
          );
          return;
        }
        this.state.lastError = (error as Error).message;
        await delay(Math.min(this.retryBaseMs * 2 ** attempt, defaultMaxBackoffMs), undefined, {
          signal: this.abort.signal,
        });
      }
    }
  }

  /**
   * A tag write names a manifest that no peer holds any more: the peer deleted it after
   * the write (its manifest-put then travels without bytes and its delete comes later in
   * the feed). Retrying cannot bring the manifest back, and would hold up every later
   * record of this peer for the whole retry budget. The peer's tombstone is applied now
   * instead (arrival order does not matter to the merge rules); the tag write is then
   * known, and stays hidden behind the delete. False when the peer has no such tombstone.
   */
  private async learnDelete(repository: string, digest: Digest): Promise<boolean> {
    try {
      const exported = await this.options.peer.exportRepository(repository);
      const tombstone = exported.tombstones.find((t) => t.digest === digest);
      if (!tombstone) return false;
      await this.options.registry.remote.apply(
        { kind: "manifest-delete", repository, digest, stamp: tombstone.stamp },
        this.content,
      );
      return true;
    } catch {
      return false;
    }
  }

  /** Starts fetching the blobs the page links, a few at a time, ahead of the applies. */
  private prefetch(records: readonly WireRecord[]): void {
    const links = records.filter((r) => r.kind === "blob-link" && r.digest);
    // Small blobs came inside their records: stored (verified) now, no request needed.
    const inline = new Set<Digest>();
    for (const record of links) {
      const digest = record.digest as Digest;
      if (record.blob === undefined || inline.has(digest)) continue;
      inline.add(digest);
      const bytes = Buffer.from(record.blob, "base64");
      void this.options.fetcher.accept(digest, bytes, this.options.peer).catch(() => undefined);
    }
    const digests = [
      ...new Set(links.map((r) => r.digest as Digest).filter((digest) => !inline.has(digest))),
    ];
    const limit = this.options.prefetch ?? 4;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < digests.length && this.running) {
        const digest = digests[next] as Digest;
        next += 1;
        await this.options.fetcher.ensureBlob(digest, this.options.peer).catch(() => undefined);
      }
    };
    for (let i = 0; i < Math.min(limit, digests.length); i += 1) void worker();
  }

  private updateLag(oldestPending: WireRecord | undefined): void {
    const caughtUp = this.state.checkpoint >= this.state.head;
    const stamp = oldestPending ? parseStamp(oldestPending.stamp) : undefined;
    if (caughtUp) this.state.lagSeconds = 0;
    else if (stamp) this.state.lagSeconds = Math.max(0, (Date.now() - stamp.physical) / 1000);
    this.options.metrics.lagSeconds.set({ peer: this.state.region }, this.state.lagSeconds);
    this.options.metrics.pendingRecords.set(
      { peer: this.state.region },
      Math.max(0, this.state.head - this.state.checkpoint),
    );
  }
}
