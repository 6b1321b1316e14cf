// Anti-entropy: from time to time, compares each repository's state digest with every
// peer's (all of them in one request per peer) and, where they differ, merges the peer's
// whole repository state (tag, manifest and blob-link registers and their tombstones)
// into this one through the remote-apply path. The peer does the same in the other
// direction, so a divergence (a record a follower gave up on, a bug, a restored backup)
// heals on its own.
import type { Logger } from "pino";
import { byCodeUnits } from "../code-unit-order.ts";
import type { Registry } from "../registry/registry.ts";
import {
  type ContentFetcher,
  type ReplicatedChange,
  StampTooFarAheadError,
} from "../registry/replicated-change.ts";
import type { BlobFetcher } from "./blob-fetcher.ts";
import type { PeerClient } from "./peer-client.ts";
import type { ReplicationMetrics } from "./replication-metrics.ts";

export interface AntiEntropyOptions {
  registry: Registry;
  peers: readonly PeerClient[];
  fetcher: BlobFetcher;
  metrics: ReplicationMetrics;
  log: Logger;
  intervalMs: number;
}

export class AntiEntropy {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;

  private intervalMs: number;

  constructor(private readonly options: AntiEntropyOptions) {
    this.intervalMs = options.intervalMs;
  }

  start(): void {
    clearInterval(this.timer);
    this.timer = setInterval(() => {
      if (!this.running) this.running = this.runOnce().finally(() => (this.running = undefined));
    }, this.intervalMs);
    this.timer.unref();
  }

  /** Rounds every `ms` from now on (the registry's setting changed). */
  setInterval(ms: number): void {
    if (ms === this.intervalMs) return;
    this.intervalMs = ms;
    if (this.timer) this.start();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** Compares every repository with every peer once; returns how many were repaired. */
  async runOnce(): Promise<number> {
    let repaired = 0;
    for (const peer of this.options.peers) {
      try {
        repaired += await this.reconcileWith(peer);
      } catch (error) {
        this.options.log.warn({ peer: peer.region, err: error }, "anti-entropy round failed");
      }
    }
    return repaired;
  }

  /**
   * Merges every repository whose state differs from the peer's; returns how many.
   * `onProgress` hears how many of the differing repositories are left (a bootstrap shows it).
   */
  async reconcileWith(
    peer: PeerClient,
    onProgress?: (left: number, total: number) => void,
  ): Promise<number> {
    const [mine, theirs] = await Promise.all([
      this.options.registry.state.stateDigests(),
      peer.stateDigests(),
    ]);
    // A repository only this replica knows is the peer's to fetch from here. The control
    // records go first: a new replica learns the replica set and the users before images.
    const differing = [...theirs.keys()]
      .filter((repository) => mine.get(repository) !== theirs.get(repository))
      .sort((a, b) => Number(b.startsWith("_")) - Number(a.startsWith("_")) || byCodeUnits(a, b));
    let repaired = 0;
    for (const repository of differing) {
      onProgress?.(differing.length - repaired, differing.length);
      await this.merge(peer, repository);
      repaired += 1;
      this.options.metrics.antiEntropyRepairs.inc({ peer: peer.region });
      this.options.log.info(
        { peer: peer.region, repository },
        "anti-entropy merged a diverged repository",
      );
    }
    return repaired;
  }

  private async merge(peer: PeerClient, repository: string): Promise<void> {
    const exported = await peer.exportRepository(repository);
    const content: ContentFetcher = {
      ensureBlob: (digest) => this.options.fetcher.ensureBlob(digest, peer),
      fetchManifest: (repo, digest) => peer.manifest(repo, digest),
    };
    // Links first, so that the manifests find their blobs linked.
    const changes: ReplicatedChange[] = [
      ...exported.links.map(
        (l): ReplicatedChange => ({
          kind: l.linked ? "blob-link" : l.expired ? "blob-expire" : "blob-unlink",
          repository,
          digest: l.digest,
          stamp: l.stamp,
        }),
      ),
      ...exported.manifests.map(
        (m): ReplicatedChange => ({ kind: "manifest-put", repository, ...m }),
      ),
      ...exported.tombstones.map(
        (t): ReplicatedChange => ({
          kind: t.expired ? "manifest-expire" : "manifest-delete",
          repository,
          digest: t.digest,
          stamp: t.stamp,
        }),
      ),
      ...(exported.controls ?? []).map(
        (c): ReplicatedChange => ({
          kind: c.value === null ? "control-delete" : "control-put",
          controlKind: c.kind,
          name: c.name,
          value: c.value,
          stamp: c.stamp,
        }),
      ),
      ...exported.tags.map(
        (t): ReplicatedChange =>
          t.digest === null
            ? { kind: "tag-delete", repository, tag: t.tag, stamp: t.stamp }
            : { kind: "tag-put", repository, tag: t.tag, digest: t.digest, stamp: t.stamp },
      ),
    ];
    for (const change of changes) {
      try {
        const outcome = await this.options.registry.remote.apply(change, content);
        if (outcome === "tag-conflict")
          this.options.metrics.tagConflicts.inc({ peer: peer.region });
      } catch (error) {
        if (error instanceof StampTooFarAheadError) {
          this.options.metrics.stampsRefused.inc({ peer: peer.region });
        }
        this.options.log.warn(
          { peer: peer.region, repository, err: error },
          "anti-entropy could not apply a change",
        );
      }
    }
  }
}
