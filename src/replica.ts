// The composition root of one replica: opens the stores, seeds the clock, builds the
// registry and its HTTP server, and runs the upload sweeper. Everything geo plugs in
// here, never inside the core.
import { randomBytes } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { join, resolve } from "node:path";
import type { Logger } from "pino";
import { collectDefaultMetrics, Registry as MetricsRegistry } from "prom-client";
import {
  type ApiExtension,
  type ApiServerOptions,
  createApiHandler,
  createApiServer,
} from "./api/api-server.ts";
import { createMetricsEndpoint } from "./api/metrics-endpoint.ts";
import { UploadLimiter } from "./api/upload-limiter.ts";
import { isLoopback } from "./auth/build-auth.ts";
import type { Config } from "./config/config-schema.ts";
import { listenOn, parseListenAddress } from "./config/listen-address.ts";
import { ConfigError, replicaEndpoint } from "./config/load-config.ts";
import { createAdminApi } from "./control/admin-api.ts";
import { controlPlaneApis } from "./control/control-plane-apis.ts";
import type { HomeReplica } from "./control/home-forwarding.ts";
import { PeerDirectory } from "./control/peer-directory.ts";
import { RegistrySettings } from "./control/registry-settings.ts";
import { startReplicaAuth } from "./control/replica-auth.ts";
import { ReplicaLifecycle } from "./control/replica-lifecycle.ts";
import { routesOf } from "./control/replica-routes.ts";
import { ReplicaSet } from "./control/replica-set.ts";
import { startGc } from "./gc/start-gc.ts";
import { ImportJobs } from "./import/import-jobs.ts";
import { createImportsApi } from "./import/imports-api.ts";
import { SqliteMetadataStore } from "./metadata/sqlite-metadata-store.ts";
import { LagHistory } from "./portal/lag-history.ts";
import { createPortalApi } from "./portal/portal-api.ts";
import { HybridClock } from "./registry/hybrid-clock.ts";
import { Registry } from "./registry/registry.ts";
import { Replicator } from "./replication/replicator.ts";
import { RoutingSwitch } from "./replication/routing-switch.ts";
import { createStatusEndpoint } from "./replication/status-endpoint.ts";
import { startGlobalEndpoint } from "./routing/start-global-endpoint.ts";
import type { BlobStore } from "./storage/blob-store.ts";
import { openBlobStore } from "./storage/open-blob-store.ts";
import { startWebhooks } from "./webhooks/start-webhooks.ts";

export interface RunningReplica {
  url: string;
  registry: Registry;
  replicator: Replicator | undefined;
  close(): Promise<void>;
}

export async function startReplica(config: Config, log: Logger): Promise<RunningReplica> {
  const dataDir = resolve(config.data);
  await mkdir(dataDir, { recursive: true });
  const replicaId = config.replicaId ?? (await loadReplicaId(dataDir));
  const durable = config.storage.durable;
  const blobs = await openBlobStore({ config: config.storage.blobs, root: dataDir, durable });
  const metadata = new SqliteMetadataStore({
    path: join(dataDir, "metadata.db"),
    durable,
    onListenerError: (error) => log.error({ err: error }, "a commit listener failed"),
  });
  // What has started so far, undone in reverse when a later step fails (a port in use, a
  // bad certificate): the error must not leave followers, timers or the database running.
  const undo: (() => Promise<void>)[] = [() => metadata.close()];
  try {
    return await assemble({ config, log, dataDir, replicaId, blobs, metadata, undo });
  } catch (error) {
    for (const step of undo.reverse()) {
      await step().catch((cleanup: unknown) =>
        log.warn({ err: cleanup }, "cleanup after a failed start failed"),
      );
    }
    throw error;
  }
}

async function assemble(parts: {
  config: Config;
  log: Logger;
  dataDir: string;
  replicaId: string;
  blobs: BlobStore;
  metadata: SqliteMetadataStore;
  undo: (() => Promise<void>)[];
}): Promise<RunningReplica> {
  const { config, log, dataDir, replicaId, blobs, metadata, undo } = parts;
  const clock = new HybridClock(replicaId);
  const latest = await metadata.latestStamp();
  if (latest) clock.observe(latest);
  // A replica that holds nothing yet copies its nearest peer's state before it follows.
  const fresh = latest === undefined;
  const registry = new Registry({
    blobs,
    metadata,
    clock,
    maxClockSkewMs: config.replication.maxClockSkewSeconds * 1000,
  });

  const metrics = new MetricsRegistry();
  collectDefaultMetrics({ register: metrics });
  const replicaSet = new ReplicaSet(registry.control);
  const isHome = configHome(config) === undefined;
  // The topology file seeds the replica set once, on the home replica; afterwards the
  // records are the truth and travel to every replica with the feeds.
  if (isHome && config.replicas) await replicaSet.seed(config);
  const replicator = await createReplicator(config, dataDir, registry, metrics, log);
  if (replicator) undo.push(() => replicator.stop());
  const entry = config.replicas?.find((r) => r.region === config.region);
  const routing = await RoutingSwitch.open(dataDir, entry?.globalEndpointRouting ?? true);
  const directory = new PeerDirectory({
    self: config.region ?? "local",
    replicaSet,
    configPeers: config.peers,
    configHome: configHome(config),
    routesFile: config.replication.routesFile,
    log,
    onPeers: (peers) => replicator?.setPeers(peers),
  });
  await directory.start();
  undo.push(async () => directory.stop());
  const followRecordedRouting = routingFromRecord(replicaSet, config.region, routing, log);
  undo.push(async () => followRecordedRouting());
  replicator?.start({ bootstrap: fresh && !isHome });
  const lifecycle =
    isHome && replicator
      ? new ReplicaLifecycle({
          self: config.region ?? "local",
          replicaSet,
          directory,
          secret: config.replication.secret ?? "",
          supervisor: config.supervisor,
          log,
        })
      : undefined;
  lifecycle?.start();
  if (lifecycle) undo.push(() => lifecycle.stop());
  const { host, port } = parseListenAddress(config.listen);
  const auth = await startReplicaAuth({
    config,
    host,
    registry,
    log,
    isHome: () => directory.home() === undefined,
  });
  undo.push(async () => auth.stop());
  // The registry's settings (control records) over the file's, applied as they change.
  const settings = new RegistrySettings(registry.control, config);
  const stopSettings = settings.follow(
    {
      auth: auth.settings,
      antiEntropyIntervalMs: (ms) => replicator?.setAntiEntropyInterval(ms),
    },
    (error) => log.error({ err: error }, "could not apply the registry's settings"),
  );
  undo.push(async () => stopSettings());
  const gc = startGc({
    config,
    registry,
    blobs,
    metadata,
    metrics,
    log,
    authorizer: auth.authorizer,
    home: () => directory.home(),
    peers: () => directory.peers(),
  });
  undo.push(async () => gc.stop());
  const webhooks = startWebhooks({ config, dataDir, replicaId, registry, metadata, metrics, log });
  undo.push(() => webhooks.close());
  // Imports run in the replica that receives them (a data write, like a push).
  const imports = await ImportJobs.open({ registry, dataDir, log, region: config.region });
  undo.push(() => imports.stop());
  // The portal's health chart: the lag of each peer as this replica follows it, over the
  // last hour (read from the followers: no request to anyone).
  const lagHistory = new LagHistory({
    sample: async () =>
      Object.fromEntries((replicator?.status().peers ?? []).map((p) => [p.region, p.lagSeconds])),
  });
  lagHistory.start();
  undo.push(async () => lagHistory.stop());
  const extensions: ApiExtension[] = [
    ...auth.extensions,
    createPortalApi({
      ...auth,
      lagHistory,
      replicaSet,
      replicates: replicator !== undefined,
      region: config.region ?? "local",
      tls: config.tls !== undefined,
      metrics,
    }),
    ...gc.extensions,
    createImportsApi({ jobs: imports, authorizer: auth.authorizer }),
    ...controlPlaneApis({ config, replicaSet, directory, lifecycle, auth, settings }),
    webhooks.adminApi(
      auth.authorizer,
      () => directory.home(),
      (region) => directory.urlOf(region),
    ),
    // The generic admin API (users, tokens) after every more specific admin prefix.
    createAdminApi({
      control: registry.control,
      authorizer: auth.authorizer,
      home: () => directory.home(),
    }),
    createMetricsEndpoint(metrics),
    createStatusEndpoint({
      config,
      replicator,
      routing,
      authorizer: auth.authorizer,
      isHome: () => directory.home() === undefined,
      usage: async () => {
        const stored = await registry.state.storedBytes();
        return {
          storedBytes: stored.blobBytes + stored.manifestBytes,
          blobs: stored.blobs,
          receivedFrom: (await replicator?.receivedBytes()) ?? {},
        };
      },
    }),
  ];
  if (replicator) extensions.push(replicator.peerApi);
  const tls = config.tls ? await readTls(config.tls) : undefined;
  if (!tls && !isLoopback(host) && !config.allowHttp) {
    throw new ConfigError(
      `refusing plain HTTP on ${config.listen}: give tls.cert and tls.key, or set allowHttp: true`,
    );
  }
  const apiOptions: ApiServerOptions = {
    registry,
    log,
    extensions,
    authorizer: auth.authorizer,
    tls,
    headersTimeoutMs: config.limits.headersTimeoutSeconds * 1000,
    idleTimeoutMs: config.limits.idleTimeoutSeconds * 1000,
    requestTimeoutMs: config.limits.requestTimeoutSeconds * 1000,
    // One limiter for the server and a global endpoint hosted here: one replica, one count.
    uploadLimiter: new UploadLimiter(config.limits.uploadsPerClient),
    trustedProxies: config.limits.trustedProxies,
  };
  const server = createApiServer(apiOptions);
  await listenOn(server, host, port);
  const closeServer = () =>
    new Promise<void>((done) => {
      server.close(() => done());
      server.closeIdleConnections();
      setTimeout(() => server.closeAllConnections(), 5_000).unref();
    });
  undo.push(closeServer);
  const address = server.address() as AddressInfo;
  const urlHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = `${tls ? "https" : "http"}://${urlHost}:${address.port}`;

  const global =
    config.region !== undefined && config.globalEndpoint?.hostedBy?.includes(config.region)
      ? await startGlobalEndpoint(config, log, {
          local: { region: config.region, handle: createApiHandler(apiOptions) },
          metrics,
          membership: async () => routesOf(await replicaSet.list()),
        })
      : undefined;

  const ttlMs = config.uploads.ttlSeconds * 1000;
  const sweep = async () => {
    try {
      const removed = await registry.uploads.expire(ttlMs);
      if (removed > 0) log.info({ removed }, "expired abandoned uploads");
    } catch (error) {
      log.error({ err: error }, "upload sweep failed");
    }
  };
  await sweep();
  const sweeper = setInterval(() => void sweep(), config.uploads.sweepIntervalSeconds * 1000);
  sweeper.unref();

  return {
    url,
    registry,
    replicator,
    async close() {
      clearInterval(sweeper);
      await imports.stop();
      gc.stop();
      lagHistory.stop();
      await global?.close();
      await lifecycle?.stop();
      followRecordedRouting();
      directory.stop();
      await replicator?.stop();
      await closeServer();
      await webhooks.close();
      await metadata.close();
    },
  };
}

/**
 * Replication runs wherever the replicas share a credential, even with no peer yet: a
 * replica created later is followed as soon as its record arrives.
 */
async function createReplicator(
  config: Config,
  dataDir: string,
  registry: Registry,
  metrics: MetricsRegistry,
  log: Logger,
): Promise<Replicator | undefined> {
  const secret = config.replication.secret;
  if (!secret || (config.peers.length === 0 && !config.replicas && !config.region)) {
    return undefined;
  }
  return Replicator.create({
    region: config.region ?? "local",
    peers: config.peers,
    secret,
    dataDir,
    registry,
    metrics,
    log,
    antiEntropyIntervalMs: config.replication.antiEntropySeconds * 1000,
    pollWaitMs: config.replication.pollWaitMs,
    readThroughTimeoutMs: config.replication.readThroughTimeoutMs,
  });
}

/**
 * Keeps this replica's routing switch as its replica record says (`replication update
 * --region-endpoint-enabled`); returns the unsubscribe.
 */
function routingFromRecord(
  replicaSet: ReplicaSet,
  region: string | undefined,
  routing: RoutingSwitch,
  log: Logger,
): () => void {
  let applied: boolean | undefined;
  const apply = async () => {
    const record = region ? await replicaSet.get(region) : undefined;
    if (!record || record.globalEndpointRouting === applied) return;
    applied = record.globalEndpointRouting;
    if (routing.globalEndpointRouting !== applied) await routing.set(applied);
  };
  const run = () =>
    void apply().catch((error: unknown) =>
      log.error({ err: error }, "could not apply the recorded routing switch"),
    );
  run();
  return replicaSet.onChange(run);
}

/** The home replica the configuration names; undefined when this is it. */
function configHome(config: Config): HomeReplica | undefined {
  if (config.homeReplica) {
    return config.homeReplica.region === config.region ? undefined : config.homeReplica;
  }
  const home = config.replicas?.find((r) => r.home);
  if (!home || home.region === config.region) return undefined;
  const peer = config.peers.find((p) => p.region === home.region);
  return { region: home.region, url: peer?.url ?? replicaEndpoint(home) };
}

async function readTls(files: {
  cert: string;
  key: string;
}): Promise<{ cert: Buffer; key: Buffer }> {
  try {
    return { cert: await readFile(files.cert), key: await readFile(files.key) };
  } catch (error) {
    throw new ConfigError(`cannot read tls.cert or tls.key: ${(error as Error).message}`);
  }
}

/** A replica's id is made once and kept in its data folder. */
async function loadReplicaId(dataDir: string): Promise<string> {
  const path = join(dataDir, "replica-id");
  try {
    return (await readFile(path, "utf8")).trim();
  } catch {
    const id = `r${randomBytes(5).toString("hex")}`;
    await writeFile(`${path}.tmp`, id);
    await rename(`${path}.tmp`, path);
    return id;
  }
}
