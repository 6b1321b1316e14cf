// Plugs garbage collection into a replica: the service with its periodic pass, its
// metrics, and its admin API extensions (to be put before the generic admin extension).
import type { Logger } from "pino";
import type { Registry as MetricsRegistry } from "prom-client";
import type { ApiExtension } from "../api/api-server.ts";
import type { Authorizer } from "../auth/authorizer.ts";
import type { Config } from "../config/config-schema.ts";
import type { HomeReplica } from "../control/home-forwarding.ts";
import type { MetadataStore } from "../metadata/metadata-store.ts";
import type { Registry } from "../registry/registry.ts";
import type { PeerEndpoint } from "../replication/peer-client.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import { createGcAdminApi } from "./gc-admin-api.ts";
import { GcMetrics } from "./gc-metrics.ts";
import { GcService, haltAfterHook } from "./gc-service.ts";

export interface StartGcOptions {
  config: Config;
  registry: Registry;
  blobs: BlobStore;
  metadata: MetadataStore;
  metrics: MetricsRegistry;
  log: Logger;
  authorizer: Authorizer;
  home: () => HomeReplica | undefined;
  peers: () => readonly PeerEndpoint[];
  /** Never remove bytes: the replica runs as several workers (GcPassOptions.keepBytes). */
  keepBytes?: boolean;
}

export interface RunningGc {
  service: GcService;
  extensions: ApiExtension[];
  stop(): void;
}

export function startGc(options: StartGcOptions): RunningGc {
  const { config, log } = options;
  const region = config.region ?? "local";
  const service = new GcService({
    stores: { registry: options.registry, metadata: options.metadata, blobs: options.blobs },
    region,
    graceSeconds: config.gc.graceSeconds,
    intervalSeconds: config.gc.intervalSeconds,
    metrics: new GcMetrics(options.metrics, region),
    log,
    onRemoved: haltAfterHook(process.env.MERIDIAN_GC_TEST_HALT_AFTER, log),
    keepBytes: options.keepBytes,
  });
  if (options.keepBytes) {
    log.warn("this replica runs as several workers: garbage collection keeps every blob's bytes");
  }
  service.start();
  return {
    service,
    extensions: createGcAdminApi({
      service,
      authorizer: options.authorizer,
      peers: options.peers,
      home: options.home,
    }),
    stop: () => service.stop(),
  };
}
