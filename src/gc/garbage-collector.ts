// One region's garbage-collection pass, online: pushes, pulls and replication go on.
//
//   1. retention: untagged manifests a policy expires (and older than the grace period)
//      are deleted with an ordinary stamped delete, which replicates;
//   2. links: a repository's link to a blob that none of its manifests references, older
//      than the grace period, is unlinked with a stamped unlink that replicates (a
//      blob-expire record: where a manifest using the blob arrived first, the manifest
//      still serves it); Distribution's collector sweeps such blobs;
//   3. bytes: a blob that nothing here references (no link in any repository, no stored
//      manifest, no unlink within the grace period) and whose file is older than the grace
//      period is deleted from this region's blob store; every region reclaims its own.
//
// Each step pages through the stores and writes one short transaction per item, so the
// metadata store's write lock is never held for long. Before each removal the collector
// takes the content's lock (only when nobody holds it: a push or a replicated manifest
// holds what it is about to reference) and the store re-checks in its transaction what the
// collector saw; bytes go last, after the metadata says nothing uses them. A pass cut off
// anywhere leaves nothing inconsistent, and the next pass does what was left.
import type { LinkKey, MetadataStore, Stamp } from "../metadata/metadata-store.ts";
import type { Digest } from "../oci/digest.ts";
import { blobKey, manifestKey } from "../registry/content-locks.ts";
import type { Registry } from "../registry/registry.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import { planRetention } from "./retention-plan.ts";
import { policyFor, type RetentionPolicy } from "./retention-policies.ts";

export interface GcStores {
  registry: Registry;
  metadata: MetadataStore;
  blobs: BlobStore;
}

export interface GcPassOptions {
  /** Count what would go and remove nothing. */
  dryRun?: boolean;
  graceSeconds: number;
  policies: readonly RetentionPolicy[];
  /** Wall-clock milliseconds (injected in tests). */
  now?: () => number;
  /** Told after every removal (manifest, link or bytes); a test hook may pause the pass. */
  onRemoved?: (count: number) => Promise<void> | void;
  /**
   * Remove no blob's bytes (manifests and links still expire). A replica running as several
   * workers passes it: its content locks are per process, so a push in another worker
   * could not hold the bytes the pass is about to remove.
   */
  keepBytes?: boolean;
}

export interface RepositoryGcReport {
  repository: string;
  manifests: number;
  manifestBytes: number;
  links: number;
  linkBytes: number;
}

export interface GcReport {
  dryRun: boolean;
  graceSeconds: number;
  startedAt: string;
  finishedAt: string;
  /** Per repository: manifests expired by retention and links expired (or that would be). */
  repositories: RepositoryGcReport[];
  /** Blobs whose bytes were deleted here (or would be). */
  blobs: { count: number; bytes: number };
  /** Removals skipped because a push or a replicated record held the content. */
  skipped: number;
  /** This region's blob store after the pass. */
  storage: { blobs: number; bytes: number };
}

const pageSize = 500;
/**
 * Removals in flight at once: each is its own short transaction, and the metadata store
 * commits those that arrive together with one fsync (group commit), so a pass over many
 * blobs is not one fsync per blob, and the write lock is still held for a few at a time.
 */
const concurrency = 16;

/**
 * Runs `work` over `items`, `concurrency` at a time, never two with the same key at once
 * (two links of one blob would contend for its lock: the second waits for the next round).
 */
async function concurrently<T>(
  items: readonly T[],
  key: (item: T) => string,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let pending = items;
  while (pending.length > 0) {
    const round: T[] = [];
    const keys = new Set<string>();
    const rest: T[] = [];
    for (const item of pending) {
      if (round.length < concurrency && !keys.has(key(item))) {
        round.push(item);
        keys.add(key(item));
      } else rest.push(item);
    }
    await Promise.all(round.map(work));
    pending = rest;
  }
}

export class GarbageCollector {
  constructor(private readonly stores: GcStores) {}

  async run(options: GcPassOptions): Promise<GcReport> {
    const pass = new Pass(this.stores, options);
    return pass.run();
  }
}

class Pass {
  private readonly now: () => number;
  private readonly dryRun: boolean;
  private readonly perRepository = new Map<string, RepositoryGcReport>();
  private readonly blobs = { count: 0, bytes: 0 };
  private readonly storage = { blobs: 0, bytes: 0 };
  private skipped = 0;
  private removed = 0;

  constructor(
    private readonly stores: GcStores,
    private readonly options: GcPassOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.dryRun = options.dryRun ?? false;
  }

  async run(): Promise<GcReport> {
    const startedAt = new Date(this.now()).toISOString();
    await this.expireManifests();
    await this.expireLinks();
    await this.sweepBytes();
    return {
      dryRun: this.dryRun,
      graceSeconds: this.options.graceSeconds,
      startedAt,
      finishedAt: new Date(this.now()).toISOString(),
      repositories: [...this.perRepository.values()]
        .filter((r) => r.manifests > 0 || r.links > 0)
        .sort((a, b) => (a.repository < b.repository ? -1 : 1)),
      blobs: this.blobs,
      skipped: this.skipped,
      storage: this.storage,
    };
  }

  /** The stamp before which a write is older than `seconds` ago. */
  private cutoff(seconds: number): Stamp {
    return String(Math.max(0, Math.floor(this.now() - seconds * 1000))).padStart(13, "0");
  }

  private report(repository: string): RepositoryGcReport {
    let entry = this.perRepository.get(repository);
    if (!entry) {
      entry = { repository, manifests: 0, manifestBytes: 0, links: 0, linkBytes: 0 };
      this.perRepository.set(repository, entry);
    }
    return entry;
  }

  private async expireManifests(): Promise<void> {
    const { policies, graceSeconds } = this.options;
    if (policies.length === 0) return;
    const { metadata, registry } = this.stores;
    let last: string | undefined;
    for (;;) {
      const names = await metadata.listRepositories({ last, limit: pageSize });
      for (const repository of names) {
        const policy = policyFor(policies, repository);
        if (!policy) continue;
        // Never younger than the grace period: an untagged manifest pushed just now may be
        // a child whose index is on its way.
        const seconds = Math.max(policy.untaggedDays * 86_400, graceSeconds);
        const plan = planRetention(await metadata.manifestGraph(repository), this.cutoff(seconds));
        let pending = plan.expired;
        // Parents go first; a child still listed by a parent is refused and tried again
        // once the parent went.
        while (pending.length > 0) {
          const refused = [];
          for (const node of pending) {
            if (this.dryRun) {
              this.countManifest(repository, node.size);
              continue;
            }
            const release = registry.locks.tryExclusive(manifestKey(repository, node.digest));
            if (!release) {
              this.skipped += 1;
              continue;
            }
            try {
              const stamp = registry.clock.next();
              if (await metadata.expireManifest(repository, node.digest, node.stamp, stamp)) {
                this.countManifest(repository, node.size);
                await this.removedOne();
              } else refused.push(node);
            } finally {
              release();
            }
          }
          if (refused.length === pending.length) break;
          pending = refused;
        }
      }
      if (names.length < pageSize) return;
      last = names.at(-1);
    }
  }

  private countManifest(repository: string, bytes: number): void {
    const entry = this.report(repository);
    entry.manifests += 1;
    entry.manifestBytes += bytes;
  }

  private async expireLinks(): Promise<void> {
    const { metadata, registry } = this.stores;
    const cutoff = this.cutoff(this.options.graceSeconds);
    let after: LinkKey | undefined;
    for (;;) {
      const page = await metadata.expirableLinks(cutoff, after, pageSize);
      await concurrently(
        page,
        (link) => link.digest,
        async (link) => {
          if (this.dryRun) {
            this.countLink(link.repository, link.size);
            return;
          }
          const release = registry.locks.tryExclusive(blobKey(link.digest));
          if (!release) {
            this.skipped += 1;
            return;
          }
          try {
            if (await metadata.expireBlobLink(link, link.stamp, registry.clock.next())) {
              this.countLink(link.repository, link.size);
              await this.removedOne();
            }
          } finally {
            release();
          }
        },
      );
      if (page.length < pageSize) return;
      const tail = page.at(-1) as LinkKey;
      after = { repository: tail.repository, digest: tail.digest };
    }
  }

  private countLink(repository: string, bytes: number): void {
    const entry = this.report(repository);
    entry.links += 1;
    entry.linkBytes += bytes;
  }

  private async sweepBytes(): Promise<void> {
    const { metadata, blobs } = this.stores;
    const cutoffMs = this.now() - this.options.graceSeconds * 1000;
    const cutoff = this.cutoff(this.options.graceSeconds);
    let after: Digest | undefined;
    for (;;) {
      const page = await blobs.listBlobs(after, pageSize);
      const old = page.filter((blob) => blob.modifiedAt.getTime() < cutoffMs);
      const unreferenced = new Set(
        this.options.keepBytes
          ? []
          : await metadata.unreferencedBlobs(
              old.map((blob) => blob.digest),
              cutoff,
            ),
      );
      await concurrently(
        page,
        (blob) => blob.digest,
        async (blob) => {
          if (
            !unreferenced.has(blob.digest) ||
            !(await this.deleteBytes(blob.digest, cutoff, cutoffMs))
          ) {
            this.storage.blobs += 1;
            this.storage.bytes += blob.size;
            return;
          }
          this.blobs.count += 1;
          this.blobs.bytes += blob.size;
        },
      );
      if (page.length < pageSize) return;
      after = page.at(-1)?.digest;
    }
  }

  /**
   * Deletes a blob's bytes under its lock, after checking once more that nothing took it:
   * no holder, no reference in the metadata, and the file still the old one.
   */
  private async deleteBytes(digest: Digest, cutoff: Stamp, cutoffMs: number): Promise<boolean> {
    if (this.dryRun) return true;
    const { metadata, blobs, registry } = this.stores;
    const release = registry.locks.tryExclusive(blobKey(digest));
    if (!release) {
      this.skipped += 1;
      return false;
    }
    try {
      const current = await blobs.published(digest);
      if (!current || current.modifiedAt.getTime() >= cutoffMs) return false;
      if ((await metadata.unreferencedBlobs([digest], cutoff)).length === 0) return false;
      if (!(await blobs.delete(digest))) return false;
      await this.removedOne();
      return true;
    } finally {
      release();
    }
  }

  private async removedOne(): Promise<void> {
    this.removed += 1;
    await this.options.onRemoved?.(this.removed);
  }
}
