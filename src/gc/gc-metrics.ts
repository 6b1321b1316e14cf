// The collector's Prometheus metrics: this region's stored bytes, what passes reclaimed,
// and when the last pass finished.
import { Counter, Gauge, type Registry } from "prom-client";
import type { GcReport } from "./garbage-collector.ts";

export class GcMetrics {
  private readonly storageBytes: Gauge<"region">;
  private readonly storageBlobs: Gauge<"region">;
  private readonly reclaimedBytes: Counter<"region">;
  private readonly deletedBlobs: Counter<"region">;
  private readonly expiredLinks: Counter<"region">;
  private readonly expiredManifests: Counter<"region">;
  private readonly lastPass: Gauge<"region">;

  constructor(
    registry: Registry,
    private readonly region: string,
  ) {
    const registers = [registry];
    const labelNames = ["region"] as const;
    this.storageBytes = new Gauge({
      name: "meridian_storage_bytes",
      help: "Bytes of the blobs stored in this region (as of the last pass or storage report)",
      labelNames,
      registers,
    });
    this.storageBlobs = new Gauge({
      name: "meridian_storage_blobs",
      help: "Blobs stored in this region (as of the last pass or storage report)",
      labelNames,
      registers,
    });
    this.reclaimedBytes = new Counter({
      name: "meridian_gc_reclaimed_bytes_total",
      help: "Blob bytes garbage collection deleted in this region",
      labelNames,
      registers,
    });
    this.deletedBlobs = new Counter({
      name: "meridian_gc_deleted_blobs_total",
      help: "Blobs garbage collection deleted in this region",
      labelNames,
      registers,
    });
    this.expiredLinks = new Counter({
      name: "meridian_gc_expired_links_total",
      help: "Repository links to blobs no manifest uses that garbage collection unlinked",
      labelNames,
      registers,
    });
    this.expiredManifests = new Counter({
      name: "meridian_gc_expired_manifests_total",
      help: "Untagged manifests a retention policy expired",
      labelNames,
      registers,
    });
    this.lastPass = new Gauge({
      name: "meridian_gc_last_pass_timestamp_seconds",
      help: "When the last garbage-collection pass (not a dry run) finished, Unix seconds",
      labelNames,
      registers,
    });
  }

  /** The blob store's size, whenever it was measured. */
  storage(usage: { blobs: number; bytes: number }): void {
    this.storageBytes.set({ region: this.region }, usage.bytes);
    this.storageBlobs.set({ region: this.region }, usage.blobs);
  }

  pass(report: GcReport): void {
    const labels = { region: this.region };
    this.storage(report.storage);
    if (report.dryRun) return;
    this.reclaimedBytes.inc(labels, report.blobs.bytes);
    this.deletedBlobs.inc(labels, report.blobs.count);
    let links = 0;
    let manifests = 0;
    for (const repository of report.repositories) {
      links += repository.links;
      manifests += repository.manifests;
    }
    this.expiredLinks.inc(labels, links);
    this.expiredManifests.inc(labels, manifests);
    this.lastPass.set(labels, Date.parse(report.finishedAt) / 1000);
  }
}
