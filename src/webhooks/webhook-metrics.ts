// Prometheus metrics of webhook delivery, on the replica's /metrics: attempts by outcome,
// and the queue (depth and oldest pending event's age) read from the outbox at scrape time.
import { Counter, Gauge, type Registry } from "prom-client";
import type { DeliveryListener } from "./delivery-worker.ts";
import type { Attempt, OutboxStore } from "./outbox-store.ts";

export class WebhookMetrics implements DeliveryListener {
  private readonly deliveries: Counter<"webhook">;
  private readonly failures: Counter<"webhook">;
  private readonly retries: Counter<"webhook">;
  private readonly deadLettered: Counter<"webhook">;

  constructor(registry: Registry, outbox: OutboxStore, now: () => number = Date.now) {
    const registers = [registry];
    this.deliveries = new Counter({
      name: "meridian_webhook_deliveries_total",
      help: "Events delivered (a 2xx answer), by webhook",
      labelNames: ["webhook"],
      registers,
    });
    this.failures = new Counter({
      name: "meridian_webhook_failures_total",
      help: "Delivery attempts that failed (no answer or not 2xx), by webhook",
      labelNames: ["webhook"],
      registers,
    });
    this.retries = new Counter({
      name: "meridian_webhook_retries_total",
      help: "Delivery attempts after an event's first, by webhook",
      labelNames: ["webhook"],
      registers,
    });
    this.deadLettered = new Counter({
      name: "meridian_webhook_dead_lettered_total",
      help: "Events given up after the last retry, by webhook",
      labelNames: ["webhook"],
      registers,
    });
    new Gauge({
      name: "meridian_webhook_queue_depth",
      help: "Events waiting to be delivered from this replica, by webhook",
      labelNames: ["webhook"],
      registers,
      async collect() {
        this.reset();
        for (const row of await outbox.pendingStats())
          this.set({ webhook: row.webhook }, row.depth);
      },
    });
    new Gauge({
      name: "meridian_webhook_oldest_pending_age_seconds",
      help: "Age of the oldest event waiting to be delivered, by webhook",
      labelNames: ["webhook"],
      registers,
      async collect() {
        this.reset();
        const at = now();
        for (const row of await outbox.pendingStats()) {
          this.set({ webhook: row.webhook }, Math.max(0, (at - row.oldestCreatedAt) / 1000));
        }
      },
    });
  }

  attempted(
    webhook: string,
    _attempt: Attempt,
    retry: boolean,
    outcome: "delivered" | "failed" | "dead",
  ) {
    if (retry) this.retries.inc({ webhook });
    if (outcome === "delivered") this.deliveries.inc({ webhook });
    else this.failures.inc({ webhook });
    if (outcome === "dead") this.deadLettered.inc({ webhook });
  }
}
