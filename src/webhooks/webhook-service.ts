// Webhooks in one replica: the records (kind "webhook" in the control plane), the outbox
// in <data>/webhooks.db, the event source that fills it from the change log and the
// worker that empties it. The composition root starts one and mounts its admin API.
import type { Logger } from "pino";
import type { Registry as MetricsRegistry } from "prom-client";
import type { MetadataStore } from "../metadata/metadata-store.ts";
import { OciError } from "../oci/oci-error.ts";
import type { ControlRecords } from "../registry/control-records.ts";
import { DeliveryWorker, type RetryPolicy } from "./delivery-worker.ts";
import { EventSource } from "./event-source.ts";
import type { Attempt, OutboxStore } from "./outbox-store.ts";
import { approveUrl, UrlRefusedError } from "./url-guard.ts";
import { pingPayload } from "./webhook-event.ts";
import { WebhookMetrics } from "./webhook-metrics.ts";
import {
  applyUpdate,
  parseWebhook,
  type Webhook,
  type WebhookUpdate,
  type WebhookValue,
  webhookKind,
} from "./webhook-record.ts";
import { sendEvent } from "./webhook-sender.ts";

export interface WebhookSettings extends RetryPolicy {
  denyPrivateNetworks: boolean;
  timeoutMs: number;
  concurrency: number;
  /** How long a manifest put waits for the tag put of the same push. */
  tagWaitMs: number;
}

export interface WebhookServiceOptions {
  /** Where events wait (the replica opens and closes it). */
  outbox: OutboxStore;
  metadata: MetadataStore;
  control: ControlRecords;
  /** This replica's region ("local" for a replica without one). */
  region: string;
  replicaId: string;
  /** The regions a webhook may be pinned to (empty: none). */
  regions: readonly string[];
  /** The registry's name, as `request.host` of the events. */
  host: string;
  settings: WebhookSettings;
  metrics: MetricsRegistry;
  log: Logger;
  now?: () => number;
  random?: () => number;
}

/** How long finished events stay in the delivery log. */
const keepFinishedMs = 7 * 24 * 3600 * 1000;

export class WebhookService {
  readonly region: string;
  private readonly outbox: OutboxStore;
  private readonly source: EventSource;
  private readonly worker: DeliveryWorker;
  private readonly stopListening: () => void;
  private readonly pruner: NodeJS.Timeout;
  private readonly now: () => number;

  constructor(private readonly options: WebhookServiceOptions) {
    this.region = options.region;
    this.now = options.now ?? Date.now;
    const { log, settings } = options;
    this.outbox = options.outbox;
    const metrics = new WebhookMetrics(options.metrics, this.outbox, this.now);
    this.worker = new DeliveryWorker({
      outbox: this.outbox,
      webhook: (name) => this.get(name),
      send: (webhook, event, signal) => this.send(webhook, event, signal),
      retry: settings,
      concurrency: settings.concurrency,
      now: this.now,
      random: options.random,
      listener: metrics,
      onError: (error) => log.error({ err: error }, "webhook delivery failed"),
    });
    this.source = new EventSource({
      metadata: options.metadata,
      outbox: this.outbox,
      webhooks: () => this.list(),
      region: options.region,
      replicaId: options.replicaId,
      host: options.host,
      settleMs: settings.tagWaitMs,
      now: this.now,
      onEnqueued: () => this.worker.wake(),
      onError: (error) => log.error({ err: error }, "could not derive webhook events"),
    });
    this.stopListening = options.metadata.onCommit((changes) => {
      if (changes.some((change) => change.control === undefined)) this.source.poke();
    });
    this.pruner = setInterval(() => {
      this.outbox
        .prune(this.now() - keepFinishedMs)
        .catch((error: unknown) => log.error({ err: error }, "could not prune the webhook log"));
    }, 3600_000);
    this.pruner.unref();
    this.source.poke();
    this.worker.wake();
  }

  async list(): Promise<Webhook[]> {
    const records = await this.options.control.list(webhookKind);
    return records
      .map((record) => parseWebhook(record.name, record.value))
      .filter((w): w is Webhook => w !== undefined);
  }

  async get(name: string): Promise<Webhook | undefined> {
    const record = await this.options.control.get(webhookKind, name);
    return record ? parseWebhook(record.name, record.value) : undefined;
  }

  async create(body: WebhookValue & { name: string }): Promise<Webhook> {
    const { name, ...value } = body;
    if (await this.get(name)) {
      throw new OciError(
        "UNSUPPORTED",
        { reason: `webhook ${name} exists: update it` },
        { status: 409 },
      );
    }
    await this.check(value);
    await this.options.control.put(webhookKind, name, value);
    return { name, ...value };
  }

  async update(current: Webhook, update: WebhookUpdate): Promise<Webhook> {
    const { name, ...value } = current;
    const next = applyUpdate(value, update);
    await this.check(next);
    await this.options.control.put(webhookKind, name, next);
    return { name, ...next };
  }

  async remove(name: string): Promise<void> {
    await this.options.control.delete(webhookKind, name);
  }

  /** Sends a ping now, from here, and logs it with the webhook's events. */
  async ping(webhook: Webhook) {
    const now = this.now();
    const ping = pingPayload({ region: this.region, host: this.options.host, now });
    const event = { id: ping.id, eventKey: ping.eventKey, action: "ping", payload: ping.body };
    const attempt = await this.send(webhook, event);
    const ok = attempt.status !== null && attempt.status >= 200 && attempt.status < 300;
    await this.outbox.addSettled(
      { ...event, webhook: webhook.name, repository: "", createdAt: now },
      attempt,
      ok ? "delivered" : "dead",
    );
    return { id: ping.id, eventKey: ping.eventKey, region: this.region, ...attemptView(attempt) };
  }

  /** The webhook's newest events delivered (or to be delivered) from this replica. */
  async events(name: string, limit: number) {
    return (await this.outbox.events(name, limit)).map((event) => ({
      id: event.id,
      eventKey: event.eventKey,
      action: event.action,
      repository: event.repository,
      state: event.state,
      attempts: event.attempts,
      region: this.region,
      createdAt: new Date(event.createdAt).toISOString(),
      nextAttemptAt: event.state === "pending" ? new Date(event.nextAt).toISOString() : null,
      log: event.log.map(attemptView),
    }));
  }

  async redeliver(name: string, id: string): Promise<boolean> {
    if (!(await this.outbox.redeliver(name, id, this.now()))) return false;
    this.worker.wake();
    return true;
  }

  async close(): Promise<void> {
    this.stopListening();
    clearInterval(this.pruner);
    await this.source.stop();
    await this.worker.stop();
  }

  private send(
    webhook: Webhook,
    event: { id: string; eventKey: string; action: string; payload: string },
    signal?: AbortSignal,
  ) {
    const { denyPrivateNetworks, timeoutMs } = this.options.settings;
    return sendEvent(webhook, event, { denyPrivateNetworks, timeoutMs, now: this.now, signal });
  }

  /** The checks of a create or an update: a known region, a receiver URL that may be called. */
  private async check(value: WebhookValue): Promise<void> {
    const { regions } = this.options;
    if (value.location !== undefined && !regions.includes(value.location)) {
      const known =
        regions.length > 0 ? `one of ${regions.join(", ")}` : "none: this registry has no regions";
      throw new OciError(
        "UNSUPPORTED",
        { reason: `unknown location ${value.location.slice(0, 64)} (${known})` },
        { status: 400 },
      );
    }
    try {
      await approveUrl(value.uri, this.options.settings.denyPrivateNetworks);
    } catch (error) {
      if (!(error instanceof UrlRefusedError)) throw error;
      throw new OciError("UNSUPPORTED", { reason: error.message }, { status: 400, cause: error });
    }
  }
}

function attemptView(attempt: Attempt) {
  return {
    at: new Date(attempt.at).toISOString(),
    status: attempt.status,
    latencyMs: attempt.latencyMs,
    response: attempt.excerpt,
  };
}
