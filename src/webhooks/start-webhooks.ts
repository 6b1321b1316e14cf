// What the composition root calls: the webhook service of one replica built from its
// configuration, and its admin API extension (mounted before the generic admin one).
import type { IncomingMessage } from "node:http";
import type { Logger } from "pino";
import type { Registry as MetricsRegistry } from "prom-client";
import type { ApiExtension } from "../api/api-server.ts";
import type { Config } from "../config/config-schema.ts";
import type { HomeReplica } from "../control/home-forwarding.ts";
import type { PeerEndpoint } from "../control/region-fanout.ts";
import type { MetadataStore } from "../metadata/metadata-store.ts";
import type { Registry } from "../registry/registry.ts";
import type { OutboxStore } from "./outbox-store.ts";
import { createWebhookAdminApi } from "./webhook-admin-api.ts";
import { WebhookService } from "./webhook-service.ts";

export interface StartWebhooksOptions {
  config: Config;
  outbox: OutboxStore;
  replicaId: string;
  registry: Registry;
  metadata: MetadataStore;
  metrics: MetricsRegistry;
  log: Logger;
}

export function startWebhooks(options: StartWebhooksOptions) {
  const { config } = options;
  const regions = new Set<string>();
  for (const replica of config.replicas ?? []) regions.add(replica.region);
  for (const peer of config.peers) regions.add(peer.region);
  if (config.region) regions.add(config.region);
  const service = new WebhookService({
    outbox: options.outbox,
    metadata: options.metadata,
    control: options.registry.control,
    region: config.region ?? "local",
    replicaId: options.replicaId,
    regions: [...regions].sort(),
    host: config.registry.name,
    settings: config.webhooks,
    metrics: options.metrics,
    log: options.log.child({ component: "webhooks" }),
  });
  return {
    service,
    adminApi(
      authorizer: { requireAdmin(req: IncomingMessage, client: string): Promise<void> },
      home: () => HomeReplica | undefined,
      peerUrl: (region: string) => string | undefined,
      peers: () => readonly PeerEndpoint[],
    ): ApiExtension {
      return createWebhookAdminApi({ service, authorizer, home, peerUrl, peers });
    },
    close: () => service.close(),
  };
}
