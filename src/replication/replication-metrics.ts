// Prometheus metrics of replication, on the replica's /metrics.
import { Counter, Gauge, type Registry } from "prom-client";

export class ReplicationMetrics {
  readonly lagSeconds: Gauge<"peer">;
  readonly pendingRecords: Gauge<"peer">;
  readonly pendingBlobs: Gauge;
  readonly pendingBytes: Gauge;
  readonly bytesReceived: Counter<"source_region">;
  readonly blobsFetched: Counter<"source_region">;
  readonly feedErrors: Counter<"peer">;
  readonly recordsApplied: Counter<"peer">;
  readonly antiEntropyRepairs: Counter<"peer">;
  readonly recordsGivenUp: Counter<"peer">;
  readonly stampsRefused: Counter<"peer">;
  readonly tagConflicts: Counter<"peer">;

  constructor(registry: Registry) {
    const registers = [registry];
    this.lagSeconds = new Gauge({
      name: "meridian_replication_lag_seconds",
      help: "Age of the oldest change of the peer not yet applied here (0 when caught up)",
      labelNames: ["peer"],
      registers,
    });
    this.pendingRecords = new Gauge({
      name: "meridian_replication_pending_records",
      help: "Change records the peer has that are not applied here yet",
      labelNames: ["peer"],
      registers,
    });
    this.pendingBlobs = new Gauge({
      name: "meridian_replication_pending_blobs",
      help: "Blobs being fetched from peers",
      registers,
    });
    this.pendingBytes = new Gauge({
      name: "meridian_replication_pending_bytes",
      help: "Bytes of blobs being fetched that have not arrived yet",
      registers,
    });
    this.bytesReceived = new Counter({
      name: "meridian_replication_bytes_received_total",
      help: "Blob bytes received from each source region",
      labelNames: ["source_region"],
      registers,
    });
    this.blobsFetched = new Counter({
      name: "meridian_replication_blobs_fetched_total",
      help: "Blobs fetched and verified, by source region",
      labelNames: ["source_region"],
      registers,
    });
    this.feedErrors = new Counter({
      name: "meridian_replication_feed_errors_total",
      help: "Failed feed requests or applies, by peer",
      labelNames: ["peer"],
      registers,
    });
    this.recordsApplied = new Counter({
      name: "meridian_replication_records_applied_total",
      help: "Change records applied from each peer's feed",
      labelNames: ["peer"],
      registers,
    });
    this.antiEntropyRepairs = new Counter({
      name: "meridian_replication_anti_entropy_repairs_total",
      help: "Repositories reconciled after their state digests differed",
      labelNames: ["peer"],
      registers,
    });
    this.recordsGivenUp = new Counter({
      name: "meridian_replication_records_given_up_total",
      help: "Feed records whose content could not be had after every retry (left to anti-entropy)",
      labelNames: ["peer"],
      registers,
    });
    this.stampsRefused = new Counter({
      name: "meridian_replication_stamps_refused_total",
      help: "Changes refused because their stamp was too far ahead of this replica's clock",
      labelNames: ["peer"],
      registers,
    });
    this.tagConflicts = new Counter({
      name: "meridian_replication_tag_conflicts_total",
      help: "Tag writes from the peer that a newer write of the same tag (to another manifest) here superseded",
      labelNames: ["peer"],
      registers,
    });
  }
}
