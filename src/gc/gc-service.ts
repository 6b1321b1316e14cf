// The collector of one replica: runs passes one at a time (a request that comes while a
// pass runs waits for it and then runs its own), runs one by itself every
// `gc.intervalSeconds`, measures the storage, and keeps the metrics.
import type { Logger } from "pino";
import type { RepositoryUsage } from "../metadata/metadata-store.ts";
import type { Digest } from "../oci/digest.ts";
import { GarbageCollector, type GcReport, type GcStores } from "./garbage-collector.ts";
import type { GcMetrics } from "./gc-metrics.ts";
import { RetentionPolicies } from "./retention-policies.ts";

export interface GcServiceOptions {
  stores: GcStores;
  region: string;
  graceSeconds: number;
  /** 0: no periodic pass. */
  intervalSeconds: number;
  metrics: GcMetrics;
  log: Logger;
  now?: () => number;
  /** A test hook told after every removal of a pass (it may pause the pass). */
  onRemoved?: (count: number) => Promise<void> | void;
  /** Never remove bytes (see GcPassOptions.keepBytes). */
  keepBytes?: boolean;
}

export interface RegionStorage {
  region: string;
  blobs: number;
  bytes: number;
  repositories: RepositoryUsage[];
}

export class GcService {
  readonly policies: RetentionPolicies;
  private readonly collector: GarbageCollector;
  private queue: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: GcServiceOptions) {
    this.collector = new GarbageCollector(options.stores);
    this.policies = new RetentionPolicies(options.stores.registry.control);
  }

  get region(): string {
    return this.options.region;
  }

  /** Starts the periodic pass and measures the storage once, in the background. */
  start(): void {
    void this.storage().catch((error: unknown) =>
      this.options.log.warn({ err: error }, "could not measure the blob store"),
    );
    const seconds = this.options.intervalSeconds;
    if (seconds <= 0) return;
    this.timer = setInterval(() => {
      this.run({}).catch((error: unknown) =>
        this.options.log.error({ err: error }, "periodic garbage collection failed"),
      );
    }, seconds * 1000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Runs a pass after any running one; `graceSeconds` overrides the configured grace. */
  run(request: { dryRun?: boolean; graceSeconds?: number }): Promise<GcReport> {
    const next = this.queue.then(() => this.pass(request));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async pass(request: { dryRun?: boolean; graceSeconds?: number }): Promise<GcReport> {
    const { log, metrics } = this.options;
    const graceSeconds = request.graceSeconds ?? this.options.graceSeconds;
    const dryRun = request.dryRun ?? false;
    if (!dryRun) log.info({ graceSeconds }, "garbage collection pass starting");
    const report = await this.collector.run({
      dryRun,
      graceSeconds,
      policies: await this.policies.list(),
      now: this.options.now,
      onRemoved: dryRun ? undefined : this.options.onRemoved,
      keepBytes: this.options.keepBytes,
    });
    metrics.pass(report);
    if (!dryRun) {
      log.info(
        {
          blobs: report.blobs.count,
          bytes: report.blobs.bytes,
          repositories: report.repositories.length,
          skipped: report.skipped,
        },
        "garbage collection pass finished",
      );
    }
    return report;
  }

  /** This region's blob store and each repository's share of it, measured now. */
  async storage(): Promise<RegionStorage> {
    const { blobs, metadata } = this.options.stores;
    let count = 0;
    let bytes = 0;
    let after: Digest | undefined;
    for (;;) {
      const page = await blobs.listBlobs(after, 1000);
      for (const blob of page) {
        count += 1;
        bytes += blob.size;
      }
      if (page.length < 1000) break;
      after = page.at(-1)?.digest;
    }
    this.options.metrics.storage({ blobs: count, bytes });
    return {
      region: this.options.region,
      blobs: count,
      bytes,
      repositories: await metadata.repositoryUsage(),
    };
  }
}

/**
 * The test hook behind MERIDIAN_GC_TEST_HALT_AFTER=N: after N removals the pass logs that
 * it halts and waits forever, so that a test can kill the process in the middle of a pass.
 */
export function haltAfterHook(
  value: string | undefined,
  log: Logger,
): ((count: number) => Promise<void>) | undefined {
  const limit = Number(value);
  if (!value || !Number.isInteger(limit) || limit <= 0) return undefined;
  return async (count) => {
    if (count < limit) return;
    log.warn({ removed: count }, "gc test hook: pass halted");
    await new Promise(() => {});
  };
}
