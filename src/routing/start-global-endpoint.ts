// Builds the global endpoint of a topology: health monitor, client locator, and the
// endpoint that routes, serves in-process and proxies with them.
import { readFile } from "node:fs/promises";
import type { Logger } from "pino";
import { collectDefaultMetrics, Registry } from "prom-client";
import { isLoopback } from "../auth/build-auth.ts";
import type { Config } from "../config/config-schema.ts";
import { parseListenAddress } from "../config/listen-address.ts";
import { ConfigError, replicaEndpoint } from "../config/load-config.ts";
import { findRegion } from "../geo/regions.ts";
import { ClientLocator } from "./client-location.ts";
import { loadGeoLookup } from "./geoip-lookup.ts";
import { GlobalEndpoint } from "./global-endpoint.ts";
import { HealthMonitor } from "./health-monitor.ts";
import type { LocalReplica } from "./local-replica.ts";
import type { RoutingPolicy } from "./request-router.ts";

/** One replica the endpoint may route to. */
export interface RouteEntry {
  region: string;
  url: string;
  coordinates: { latitude: number; longitude: number };
}

/** How often the replica set is asked who the replicas are. */
const membershipIntervalMs = 2_000;

export interface StartedGlobalEndpoint {
  endpoint: GlobalEndpoint;
  monitor: HealthMonitor;
  close(): Promise<void>;
}

export async function startGlobalEndpoint(
  config: Config,
  log: Logger,
  options: {
    policy?: RoutingPolicy;
    listen?: string;
    local?: LocalReplica;
    /** The hosting replica's registry: its counters join the replica's, sampled once. */
    metrics?: Registry;
    /**
     * The replicas to route to as the replica set says now; asked every few seconds, so
     * that replicas created or deleted at run time are routed to or dropped. Undefined
     * (or an empty answer, or a failure) keeps the current list.
     */
    membership?: () => Promise<RouteEntry[] | undefined>;
  } = {},
): Promise<StartedGlobalEndpoint> {
  const settings = config.globalEndpoint ?? {
    listen: "127.0.0.1:5000",
    mode: "proxy" as const,
    ranking: "distance" as const,
    trustedProxies: [],
    locationHeader: "X-Meridian-Client-Location",
    cidrRegions: {},
    probeIntervalMs: 1000,
    failureThreshold: 2,
    geoip: true,
  };
  const replicas = (config.replicas ?? []).map((entry) => {
    const known = findRegion(entry.region);
    const coordinates =
      entry.latitude !== undefined && entry.longitude !== undefined
        ? { latitude: entry.latitude, longitude: entry.longitude }
        : (known ?? { latitude: 0, longitude: 0 });
    return { region: entry.region, url: replicaEndpoint(entry), coordinates };
  });
  const home = config.replicas?.find((r) => r.home)?.region ?? replicas[0]?.region ?? "westus";
  const monitor = new HealthMonitor({
    replicas,
    probeIntervalMs: settings.probeIntervalMs,
    probeTimeoutMs: Math.max(500, settings.probeIntervalMs),
    failureThreshold: settings.failureThreshold,
  });
  const locator = new ClientLocator({
    trustedProxies: settings.trustedProxies,
    header: settings.locationHeader,
    cidrRegions: settings.cidrRegions,
    defaultRegion: settings.defaultRegion ?? home,
    geoLookup: settings.geoip
      ? await loadGeoLookup({ eager: !isLoopback(parseListenAddress(settings.listen).host) })
      : undefined,
  });
  let metrics = options.metrics;
  if (!metrics) {
    metrics = new Registry();
    collectDefaultMetrics({ register: metrics });
  }
  const { host, port } = parseListenAddress(options.listen ?? settings.listen);
  const tls = config.tls
    ? { cert: await readFile(config.tls.cert), key: await readFile(config.tls.key) }
    : undefined;
  if (!tls && !isLoopback(host) && !config.allowHttp) {
    throw new ConfigError(
      `refusing plain HTTP for the global endpoint on ${host}: give tls.cert and tls.key, or set allowHttp: true`,
    );
  }
  await monitor.start();
  let endpoint: GlobalEndpoint;
  try {
    endpoint = await GlobalEndpoint.start({
      host,
      port,
      monitor,
      locator,
      mode: settings.mode,
      ranking: settings.ranking,
      metrics,
      log,
      policy: options.policy,
      tls,
      local: options.local,
    });
  } catch (error) {
    // A port in use must not leave the probes running.
    monitor.stop();
    throw error;
  }
  const membership = options.membership;
  let refreshing = false;
  const refresh = async () => {
    if (!membership || refreshing) return;
    refreshing = true;
    try {
      const routes = await membership();
      if (routes && routes.length > 0) await monitor.setReplicas(routes);
    } catch (error) {
      log.debug({ err: error }, "could not read the replica set; routing as before");
    } finally {
      refreshing = false;
    }
  };
  const membershipTimer = membership
    ? setInterval(() => void refresh(), membershipIntervalMs)
    : undefined;
  membershipTimer?.unref();
  return {
    endpoint,
    monitor,
    async close() {
      clearInterval(membershipTimer);
      monitor.stop();
      await endpoint.close();
    },
  };
}
