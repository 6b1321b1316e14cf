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
import { type ReplicaAuthHandle, startReplicaAuth } from "./control/replica-auth.ts";
import { ReplicaLifecycle } from "./control/replica-lifecycle.ts";
import { routesOf } from "./control/replica-routes.ts";
import { ReplicaSet } from "./control/replica-set.ts";
import { startGc } from "./gc/start-gc.ts";
import { ImportJobs } from "./import/import-jobs.ts";
import { createImportsApi } from "./import/imports-api.ts";
import type { MetadataStore } from "./metadata/metadata-store.ts";
import { nodeSlots, openMetadataStore, openNodeLease } from "./metadata/open-metadata-store.ts";
import { SqliteMetadataStore } from "./metadata/sqlite-metadata-store.ts";
import {
  createClusterMetricsEndpoint,
  shareMetricsWithPrimary,
} from "./nodes/cluster-metrics-endpoint.ts";
import { isLeader, type NodeRole, soleNode } from "./nodes/node-role.ts";
import { openSharedWorkStores, type SharedWorkStores } from "./nodes/shared-work-stores.ts";
import { workerExtensions } from "./nodes/worker-extensions.ts";
import { LagHistory } from "./portal/lag-history.ts";
import { createPortalApi } from "./portal/portal-api.ts";
import { HybridClock } from "./registry/hybrid-clock.ts";
import { Registry } from "./registry/registry.ts";
import { Replicator } from "./replication/replicator.ts";
import { RoutingSwitch } from "./replication/routing-switch.ts";
import { createStatusEndpoint } from "./replication/status-endpoint.ts";
import type { BlobStore } from "./storage/blob-store.ts";
import { openBlobStore } from "./storage/open-blob-store.ts";
import { startWebhooks } from "./webhooks/start-webhooks.ts";

export interface RunningReplica {
  url: string;
  /** Of the leader of several workers: where the other workers forward to it. */
  leaderUrl?: string | undefined;
  registry: Registry;
  replicator: Replicator | undefined;
  close(): Promise<void>;
}

export async function startReplica(
  config: Config,
  log: Logger,
  given: NodeRole = soleNode,
): Promise<RunningReplica> {
  const dataDir = resolve(config.data);
  await mkdir(dataDir, { recursive: true });
  const ownId = config.replicaId ?? (await loadReplicaId(dataDir));
  const durable = config.storage.durable;
  const metadata = await openMetadataStore({
    config: config.storage.metadata,
    dataDir,
    durable,
    onListenerError: (error) => log.error({ err: error }, "a commit listener failed"),
    // The other workers' commits wake this one's feed long-polls and webhook source too.
    sharedWith: given.slots > 1 ? { pollMs: 3 } : undefined,
    onOpen: (store) => log.info(`metadata store: ${store}`),
  });
  // What has started so far, undone in reverse when a later step fails (a port in use, a
  // bad certificate): the error must not leave followers, timers or the database running.
  const undo: (() => Promise<void>)[] = [() => metadata.close()];
  try {
    // The small blobs share the embedded metadata file: a blob and its link, one flush.
    const blobs = await openBlobStore({
      config: config.storage.blobs,
      root: dataDir,
      durable,
      metadataDatabase: metadata instanceof SqliteMetadataStore ? metadata.database() : undefined,
    });
    // After the store: its migrations make the tables the leases use.
    const role = await nodeRoleOf(config, given, log);
    if (role.lease) undo.push(() => role.lease?.close() ?? Promise.resolve());
    // The nodes of a region are one replica: they stamp with one id.
    const replicaId = role.lease && !config.replicaId ? await role.lease.replicaId(ownId) : ownId;
    return await assemble({ config, log, dataDir, replicaId, blobs, metadata, undo, role });
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
  metadata: MetadataStore;
  undo: (() => Promise<void>)[];
  role: NodeRole;
}): Promise<RunningReplica> {
  const { config, log, dataDir, replicaId, blobs, metadata, undo, role } = parts;
  // Workers: node 0 leads. Nodes over a shared database: whoever holds the lease.
  let leads = role.lease ? await role.lease.tryLead() : isLeader(role);
  const clock = new HybridClock(replicaId, Date.now, role);
  const latest = await metadata.latestStamp();
  if (latest) clock.observe(latest);
  // Nodes that share one store (PostgreSQL) hear each other's commits: their stamps move
  // this node's clock on, so that a write taken here after one there was heard is stamped
  // after it.
  const stopObserving = metadata.onCommit((changes) => {
    for (const change of changes) clock.observe(change.stamp);
  });
  undo.push(async () => stopObserving());
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
  if (role.slots > 1) shareMetricsWithPrimary(metrics);
  const replicaSet = new ReplicaSet(registry.control);
  const isHome = configHome(config) === undefined;
  // The topology file seeds the replica set once, on the home replica; afterwards the
  // records are the truth and travel to every replica with the feeds.
  if (isHome && leads && config.replicas) await replicaSet.seed(config);
  const work = await openSharedWorkStores({
    config,
    dataDir,
    processes: role.slots,
    onIdleError: (error) => log.warn({ err: error }, "shared work state: a background call failed"),
  });
  undo.push(() => work.close());
  const replicator = await createReplicator(config, work, registry, metrics, log, leads);
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
  const { host, port } = parseListenAddress(config.listen);
  const auth = await startReplicaAuth({
    config,
    host,
    registry,
    log,
    // Only the leader makes the shared signing key, so that two workers never both do.
    isHome: () => leads && directory.home() === undefined,
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

  const leaderServices = (bootstrap: boolean) =>
    startLeaderServices({
      ...parts,
      registry,
      metrics,
      replicaSet,
      replicator,
      routing,
      directory,
      auth,
      settings,
      bootstrap,
      isHome,
      work,
    });
  // Where a node that does not lead finds the leader: told by the primary (workers), or
  // as the leader advertised it in the shared database (nodes), looked up every 2 s.
  let advertisedLeader: string | undefined;
  const leaderUrl = role.lease ? () => advertisedLeader : (role.leaderUrl ?? (() => undefined));
  let services = leads
    ? await leaderServices(fresh && !isHome)
    : {
        extensions: workerExtensions({
          auth: auth.extensions,
          peerApi: replicator?.peerApi,
          leaderUrl,
        }),
        stop: async () => {},
        afterServer: async () => {},
      };
  // The server reads this array at every request: a node that takes the lead later swaps
  // its forwarding for the leader's extensions in place.
  const extensions = services.extensions;
  if (replicator && leads) extensions.push(replicator.peerApi);
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
    leads && config.region !== undefined && config.globalEndpoint?.hostedBy?.includes(config.region)
      ? // Loaded only by a replica that hosts the endpoint (its relay's HTTP client is 6 MiB).
        await (await import("./routing/start-global-endpoint.ts")).startGlobalEndpoint(
          config,
          log,
          {
            local: { region: config.region, handle: createApiHandler(apiOptions) },
            metrics,
            membership: async () => routesOf(await replicaSet.list()),
          },
        )
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
  // One sweeper per replica: the leader's.
  if (leads) await sweep();
  let sweeper = leads
    ? setInterval(() => void sweep(), config.uploads.sweepIntervalSeconds * 1000)
    : undefined;
  sweeper?.unref();
  const endpointUrl = config.endpoint ?? url;
  if (role.lease && leads) await role.lease.advertise(endpointUrl);
  const lease = role.lease;
  /** Takes over the work of a leader that went (its lease is this node's now). */
  const promote = async () => {
    leads = true;
    await lease?.advertise(endpointUrl);
    replicator?.takeLead();
    const leader = await leaderServices(false);
    extensions.splice(0, extensions.length, ...leader.extensions);
    if (replicator) extensions.push(replicator.peerApi);
    await services.stop();
    services = leader;
    sweeper = setInterval(() => void sweep(), config.uploads.sweepIntervalSeconds * 1000);
    sweeper.unref();
    log.warn({ slot: role.slot }, "this node leads the region now");
  };
  const contender =
    lease && !leads
      ? setInterval(() => {
          void (async () => {
            if (leads) return;
            if (await lease.tryLead()) await promote();
            else advertisedLeader = await lease.leaderUrl();
          })().catch((error: unknown) =>
            log.error({ err: error }, "could not check the region's leadership"),
          );
        }, 2_000)
      : undefined;
  contender?.unref();
  if (lease && !leads) advertisedLeader = await lease.leaderUrl();
  const forWorkers = leads && role.slots > 1 ? await listenPrivately(apiOptions) : undefined;
  if (forWorkers) undo.push(forWorkers.close);

  return {
    url,
    leaderUrl: forWorkers?.url,
    registry,
    replicator,
    async close() {
      clearInterval(contender);
      clearInterval(sweeper);
      await services.stop();
      await global?.close();
      directory.stop();
      await replicator?.stop();
      await closeServer();
      await forWorkers?.close();
      await services.afterServer();
      await work.close();
      await lease?.close();
      await metadata.close();
    },
  };
}

/**
 * A node over PostgreSQL takes a clock slot and may take the region's leadership: any
 * number of such nodes (up to `nodeSlots`) serve one region.
 */
async function nodeRoleOf(config: Config, given: NodeRole, log: Logger): Promise<NodeRole> {
  if (config.storage.metadata.driver !== "postgres") return given;
  if (given.slots > 1) {
    throw new ConfigError(
      "workers: a region on PostgreSQL scales by nodes; run each node with workers: 1",
    );
  }
  const lease = await openNodeLease(config.storage.metadata, (error) => {
    // Whatever this node held may be another's now: it must not act on it a moment longer.
    log.fatal({ err: error }, "lost the connection holding this node's leases; stopping");
    log.flush();
    process.exit(1);
  });
  return { slot: lease.slot, slots: nodeSlots, lease };
}

/** What only the leader (a replica's sole process, or node 0 of its workers) runs. */
async function startLeaderServices(parts: {
  config: Config;
  log: Logger;
  dataDir: string;
  replicaId: string;
  blobs: BlobStore;
  metadata: MetadataStore;
  undo: (() => Promise<void>)[];
  role: NodeRole;
  registry: Registry;
  metrics: MetricsRegistry;
  replicaSet: ReplicaSet;
  replicator: Replicator | undefined;
  routing: RoutingSwitch;
  directory: PeerDirectory;
  auth: ReplicaAuthHandle;
  settings: RegistrySettings;
  bootstrap: boolean;
  isHome: boolean;
  work: SharedWorkStores;
}): Promise<{ extensions: ApiExtension[]; stop(): Promise<void>; afterServer(): Promise<void> }> {
  const { config, log, dataDir, replicaId, blobs, metadata, undo, role } = parts;
  const { registry, metrics, replicaSet, replicator, routing, directory, auth, settings } = parts;
  const { isHome } = parts;
  const followRecordedRouting = routingFromRecord(replicaSet, config.region, routing, log);
  undo.push(async () => followRecordedRouting());
  replicator?.start({ bootstrap: parts.bootstrap });
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
    keepBytes: role.slots > 1,
  });
  undo.push(async () => gc.stop());
  const webhooks = startWebhooks({
    config,
    outbox: parts.work.outbox,
    replicaId,
    registry,
    metadata,
    metrics,
    log,
  });
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
      () => directory.peers(),
    ),
    // The generic admin API (users, tokens) after every more specific admin prefix.
    createAdminApi({
      control: registry.control,
      authorizer: auth.authorizer,
      home: () => directory.home(),
    }),
    role.slots > 1 ? createClusterMetricsEndpoint() : createMetricsEndpoint(metrics),
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
  return {
    extensions,
    async stop() {
      await imports.stop();
      gc.stop();
      lagHistory.stop();
      await lifecycle?.stop();
      followRecordedRouting();
    },
    afterServer: () => webhooks.close(),
  };
}

/**
 * Replication runs wherever the replicas share a credential, even with no peer yet: a
 * replica created later is followed as soon as its record arrives.
 */
async function createReplicator(
  config: Config,
  work: SharedWorkStores,
  registry: Registry,
  metrics: MetricsRegistry,
  log: Logger,
  follows: boolean,
): Promise<Replicator | undefined> {
  const secret = config.replication.secret;
  if (!secret || (config.peers.length === 0 && !config.replicas && !config.region)) {
    return undefined;
  }
  return Replicator.create({
    region: config.region ?? "local",
    peers: config.peers,
    secret,
    checkpoints: work.checkpoints,
    fetchClaims: work.fetchClaims,
    registry,
    metrics,
    log,
    antiEntropyIntervalMs: config.replication.antiEntropySeconds * 1000,
    pollWaitMs: config.replication.pollWaitMs,
    readThroughTimeoutMs: config.replication.readThroughTimeoutMs,
    follows,
  });
}

/**
 * The leader of several workers answers the others on a listener of its own (loopback,
 * a free port, not shared with the workers), which believes the client address they
 * forward.
 */
async function listenPrivately(
  apiOptions: ApiServerOptions,
): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createApiServer({
    ...apiOptions,
    tls: undefined,
    trustedProxies: [...(apiOptions.trustedProxies ?? []), "127.0.0.1", "::1"],
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: "127.0.0.1", port: 0, exclusive: true }, resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((done) => {
        server.close(() => done());
        server.closeAllConnections();
      }),
  };
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
