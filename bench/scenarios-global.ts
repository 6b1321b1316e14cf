// Global endpoint figures, Meridian only: the cost of going through the global endpoint
// (src/routing/) instead of straight to the regional endpoint. A one-replica cluster
// (bench/bench-cluster.ts) and, in the bench process's main thread, two global endpoints
// in front of it (proxy mode and redirect mode, started with startGlobalEndpoint). Measured
// against both the endpoint and the replica with the same clients, each in a worker thread
// so that no client shares the endpoint's event loop: manifest GET requests/s at
// BENCH_RPS_CONCURRENCY, and BENCH_BLOB_MIB blob pull throughput at concurrency 1 (proxy
// mode streams the bytes through; redirect mode answers 307 and the client GETs the
// Location from the replica). A third endpoint runs inside the replica's own process
// (`globalEndpoint.hostedBy`), the deployment where every region serves the global name and
// routes its own clients in-process. Each figure is the ratio endpoint/direct.
import { cpus } from "node:os";
import { type EventLoopUtilization, performance } from "node:perf_hooks";
import pino from "pino";
import type { Config } from "../src/config/config-schema.ts";
import {
  type StartedGlobalEndpoint,
  startGlobalEndpoint,
} from "../src/routing/start-global-endpoint.ts";
import { freePorts, sumSamples } from "../test/support/cluster.ts";
import { type BenchCluster, withCluster } from "./bench-cluster.ts";
import { LargeBlobs, makeSmallImage, ociManifestType } from "./blob-data.ts";
import { type ClientThread, withClientThread } from "./client-thread.ts";
import type { BenchConfig } from "./config.ts";
import {
  checkErrors,
  clientBoundWarning,
  mean,
  median,
  megabytesPerSecond,
  percent,
} from "./figures.ts";
import { loadNote, processSchedstat, threadSchedstat } from "./host.ts";
import type { LoadResult } from "./load.ts";
import { RegistryClient } from "./registry-client.ts";
import {
  measureGroup,
  type ReplicationContext,
  type ReplicationScenario,
} from "./scenarios-replication.ts";
import type { PullJob, PullOutcome } from "./timed-pull.ts";

const region = "westus";
const repo = "bench/global";
const tag = "latest";
const servedHeader = "x-meridian-replica";
const rateGoal = 0.8;
const throughputGoal = 0.9;
/** Rounds of timed pulls at least (BENCH_REPEAT if more): single pulls are noisy here. */
const minPullRounds = 5;

const figureIds = {
  manifest: "global-manifest-get",
  hostedManifest: "global-manifest-get-hosted",
  proxy: "global-pull-proxy",
  redirect: "global-pull-redirect",
  hosted: "global-pull-hosted",
} as const;

const competitors = "the replica, the endpoint and the clients";

function goalNote(ratio: number, goal: number): string {
  return ratio >= goal ? `goal >= ${goal} met` : `below the goal of ${goal}`;
}

function fmt(value: number, digits = 0): string {
  return value.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

// ---------------------------------------------------------------------------------------------
// CPU of the replica and of the endpoint (the bench process's main thread, where it runs)

interface CpuMark {
  readonly replica: { cpu: number; wait: number };
  readonly endpoint: { cpu: number; wait: number };
  readonly elu: EventLoopUtilization;
}

interface CpuSpent {
  /** CPU seconds of the replica's threads. */
  readonly replica: number;
  /** CPU seconds of the bench main thread (the global endpoint; idle when direct). */
  readonly endpoint: number;
  /** Seconds the main thread was runnable but waiting for a CPU. */
  readonly endpointWait: number;
  /** Milliseconds the main thread's event loop was busy. */
  readonly endpointActiveMs: number;
}

function cpuMark(replicaPid: number): CpuMark {
  return {
    replica: processSchedstat(replicaPid),
    endpoint: threadSchedstat(process.pid, process.pid),
    elu: performance.eventLoopUtilization(),
  };
}

function cpuSince(mark: CpuMark, replicaPid: number): CpuSpent {
  const endpoint = threadSchedstat(process.pid, process.pid);
  return {
    replica: processSchedstat(replicaPid).cpu - mark.replica.cpu,
    endpoint: endpoint.cpu - mark.endpoint.cpu,
    endpointWait: endpoint.wait - mark.endpoint.wait,
    endpointActiveMs: performance.eventLoopUtilization(mark.elu).active,
  };
}

function addSpent(a: CpuSpent, b: CpuSpent): CpuSpent {
  return {
    replica: a.replica + b.replica,
    endpoint: a.endpoint + b.endpoint,
    endpointWait: a.endpointWait + b.endpointWait,
    endpointActiveMs: a.endpointActiveMs + b.endpointActiveMs,
  };
}

const noCpu: CpuSpent = { replica: 0, endpoint: 0, endpointWait: 0, endpointActiveMs: 0 };

// ---------------------------------------------------------------------------------------------
// The cluster and its endpoints

interface GlobalSetup {
  readonly cluster: BenchCluster;
  readonly replicaPid: number;
  readonly direct: string;
  readonly proxy: StartedGlobalEndpoint;
  readonly redirect: StartedGlobalEndpoint;
  /** The endpoint hosted in the replica's own process (`globalEndpoint.hostedBy`). */
  readonly hosted: string;
  /** The worker thread every timed client runs in. */
  readonly client: ClientThread;
}

function endpointConfig(config: Config, mode: "proxy" | "redirect"): Config {
  return {
    ...config,
    globalEndpoint: {
      listen: "127.0.0.1:0",
      mode,
      ranking: "distance",
      trustedProxies: [],
      locationHeader: "X-Meridian-Client-Location",
      cidrRegions: {},
      probeIntervalMs: 1000,
      failureThreshold: 2,
      geoip: false,
    },
  };
}

/** Starts the one-replica cluster, both endpoints and the client thread, runs `work`, always stops everything. */
async function withGlobalSetup(
  context: ReplicationContext,
  work: (setup: GlobalSetup) => Promise<void>,
): Promise<void> {
  const [hostedPort] = await freePorts(1);
  const hosted = `http://127.0.0.1:${hostedPort}`;
  const globalEndpoint = { listen: `127.0.0.1:${hostedPort}`, hostedBy: region, geoip: false };
  await withCluster(context, { regions: [region], globalEndpoint }, async (cluster) => {
    const endpoints: StartedGlobalEndpoint[] = [];
    try {
      const logger = pino({ level: "silent" });
      const start = (mode: "proxy" | "redirect") =>
        startGlobalEndpoint(endpointConfig(cluster.config, mode), logger, {
          listen: "127.0.0.1:0",
        });
      const proxy = await start("proxy");
      endpoints.push(proxy);
      const redirect = await start("redirect");
      endpoints.push(redirect);
      context.log(
        `global: replica ${region} on ${cluster.url(region)}, endpoints proxy ${proxy.endpoint.url}, redirect ${redirect.endpoint.url} and hosted by ${region} ${hosted}`,
      );
      await withClientThread((client) =>
        work({
          cluster,
          replicaPid: cluster.pid(region),
          direct: cluster.url(region),
          proxy,
          redirect,
          hosted,
          client,
        }),
      );
    } finally {
      await Promise.allSettled(endpoints.map((endpoint) => endpoint.close()));
    }
  });
}

/** Warning/error lines the replica logs from now on, as figure warnings. */
function problemsFromNow(cluster: BenchCluster): () => string[] {
  const before = cluster.problemLines.get(region)?.length ?? 0;
  return () => {
    const lines = (cluster.problemLines.get(region) ?? []).slice(before);
    return lines.length > 0
      ? [`${region} logged ${lines.length} warning/error line(s); first: ${lines[0]}`]
      : [];
  };
}

/** Requests the endpoint's meridian_global_requests_total counted so far. */
async function endpointRequests(endpointUrl: string): Promise<number> {
  const client = new RegistryClient(endpointUrl, 1);
  try {
    const reply = await client.expect("GET", "/metrics", [200], { keepBodyBytes: 1024 * 1024 });
    return sumSamples(reply.body.toString("utf8"), "meridian_global_requests_total");
  } finally {
    client.close();
  }
}

// ---------------------------------------------------------------------------------------------
// 1. Manifest GET by tag, through the endpoint (proxy mode) and direct

type RateVia = "direct" | "proxy" | "hosted";

interface RateRun {
  readonly via: RateVia;
  readonly result: LoadResult;
  readonly cpu: CpuSpent;
  /** Warm-up + measurement, seconds (the CPU above was spent over about that). */
  readonly busySeconds: number;
}

/** One checked GET: same bytes, digest, type, and the replica named. */
async function checkManifestGet(
  origin: string,
  path: string,
  image: ReturnType<typeof makeSmallImage>,
): Promise<string[]> {
  const client = new RegistryClient(origin, 1);
  try {
    const { reply, problems } = await client.checkManifest(path, image);
    if (reply.headers[servedHeader] !== region) {
      problems.push(`GET ${origin}${path} -> X-Meridian-Replica ${reply.headers[servedHeader]}`);
    }
    return problems;
  } finally {
    client.close();
  }
}

async function manifestRates(context: ReplicationContext, setup: GlobalSetup): Promise<void> {
  const { config } = context;
  const image = makeSmallImage();
  const path = `/v2/${repo}/manifests/${tag}`;
  const warnings: string[] = [];
  const problems = problemsFromNow(setup.cluster);
  const pushTo = setup.cluster.client(region, 2);
  await pushTo.pushImage(repo, image, tag);
  const origins: Record<RateVia, string> = {
    direct: setup.direct,
    proxy: setup.proxy.endpoint.url,
    hosted: setup.hosted,
  };
  warnings.push(...(await checkManifestGet(origins.proxy, path, image)));
  warnings.push(...(await checkManifestGet(origins.hosted, path, image)));
  const load = loadNote(competitors);
  const countedBefore = await endpointRequests(origins.proxy);
  // Mirrored order: a drift of the machine's load hits every way alike.
  const order = ["direct", "proxy", "hosted", "hosted", "proxy", "direct"] as const;
  const runs: RateRun[] = [];
  for (const via of order) {
    const mark = cpuMark(setup.replicaPid);
    const result = await setup.client.load({
      origin: origins[via],
      method: "GET",
      path,
      headers: { accept: ociManifestType },
      expectStatus: [200],
      concurrency: config.rpsConcurrency,
      durationMs: config.rpsSeconds * 1000,
      maxRequests: 10_000_000,
      warmupMs: config.warmupSeconds * 1000,
    });
    const cpu = cpuSince(mark, setup.replicaPid);
    warnings.push(
      ...checkErrors(`manifest GETs (${via})`, result.ok, result.errors, result.firstError),
    );
    warnings.push(...clientBoundWarning(result.clientUtilization, via));
    runs.push({
      via,
      result,
      cpu,
      busySeconds: config.warmupSeconds + result.elapsedMs / 1000,
    });
    context.log(`global manifest GET ${via}: ${result.perSecond.toFixed(0)}/s`);
  }
  const counted = (await endpointRequests(origins.proxy)) - countedBefore;
  const of = (via: RateVia) => runs.filter((run) => run.via === via);
  const rateOf = (via: RateVia) => mean(of(via).map((run) => run.result.perSecond));
  const directRuns = of("direct");
  const directRate = rateOf("direct");
  const proxyOk = of("proxy").reduce((sum, run) => sum + run.result.ok, 0);
  if (counted < proxyOk) {
    warnings.push(
      `the endpoint's meridian_global_requests_total grew by ${counted}, fewer than the ${proxyOk} requests answered through it`,
    );
  }
  const describe = (list: readonly RateRun[]): string =>
    `${fmt(mean(list.map((run) => run.result.perSecond)))} req/s (runs ${list.map((run) => fmt(run.result.perSecond)).join(", ")}; p50 ${list.map((run) => run.result.p50Ms).join("/")} ms, p99 ${list.map((run) => run.result.p99Ms).join("/")} ms)`;
  const cpuOf = (list: readonly RateRun[]) => {
    const spent = list.reduce((sum, run) => addSpent(sum, run.cpu), noCpu);
    const seconds = list.reduce((sum, run) => sum + run.busySeconds, 0);
    // Requests answered over warm-up + measurement, estimated at the measured rate.
    const requests = list.reduce((sum, run) => sum + run.result.perSecond * run.busySeconds, 0);
    return {
      replicaPercent: (spent.replica / seconds) * 100,
      endpointPercent: (spent.endpoint / seconds) * 100,
      endpointBusyPercent: (spent.endpointActiveMs / 1000 / seconds) * 100,
      endpointWaitPercent: (spent.endpointWait / seconds) * 100,
      endpointMicros: (spent.endpoint / requests) * 1e6,
      replicaMicros: (spent.replica / requests) * 1e6,
      client: mean(list.map((run) => run.result.clientUtilization)) * 100,
    };
  };
  const directCpu = cpuOf(directRuns);
  const directNote = `direct: replica ${percent(directCpu.replicaPercent)} = ${directCpu.replicaMicros.toFixed(0)} us per request, load thread busy ${percent(directCpu.client)}`;
  const common = `runs in the order ${order.join(", ")}, each ${config.warmupSeconds} s warm-up + ${config.rpsSeconds} s, ${config.rpsConcurrency} keep-alive connections from a worker thread`;
  warnings.push(...problems());
  for (const via of ["proxy", "hosted"] as const) {
    const viaRuns = of(via);
    const ratio = rateOf(via) / directRate;
    const viaCpu = cpuOf(viaRuns);
    const cpuNote =
      via === "proxy"
        ? `CPU (% of one core, over warm-up + measurement) through the endpoint: endpoint (bench main thread) ${percent(viaCpu.endpointPercent)} = ${viaCpu.endpointMicros.toFixed(0)} us per request (event loop busy ${percent(viaCpu.endpointBusyPercent)}, waiting for a CPU ${percent(viaCpu.endpointWaitPercent)}), replica ${percent(viaCpu.replicaPercent)} = ${viaCpu.replicaMicros.toFixed(0)} us per request, load thread busy ${percent(viaCpu.client)}; ${directNote}; the endpoint adds a third busy thread (after the replica and the load generator) on ${cpus().length} cores`
        : `CPU (% of one core, over warm-up + measurement) through the hosted endpoint: replica with its endpoint ${percent(viaCpu.replicaPercent)} = ${viaCpu.replicaMicros.toFixed(0)} us per request, load thread busy ${percent(viaCpu.client)}; ${directNote}`;
    const what =
      via === "proxy"
        ? "through a global endpoint of its own (proxy mode, to a replica in another process)"
        : `through the global endpoint hosted in ${region}'s process (served in-process)`;
    context.log(`global manifest GET ${via}: endpoint/direct ${ratio.toFixed(2)}`);
    context.report(via === "proxy" ? figureIds.manifest : figureIds.hostedManifest, ratio, {
      warnings,
      // Each run against the direct run at the same distance from the middle of the order.
      samples: viaRuns.map((run, index) => {
        const direct = directRuns[index];
        return direct ? run.result.perSecond / direct.result.perSecond : Number.NaN;
      }),
      notes: [
        `${what}: ${describe(viaRuns)}; direct to ${region}: ${describe(directRuns)}; ${goalNote(ratio, rateGoal)}`,
        via === "proxy" ? `${common}; the endpoint counted ${counted} requests` : common,
        cpuNote,
        load,
      ],
    });
  }
}

// ---------------------------------------------------------------------------------------------
// 2-3. Large blob pull: direct, through the proxy endpoint, through the redirect endpoint

type PullVia = "direct" | "proxy" | "redirect" | "hosted";

interface PullSample {
  readonly via: PullVia;
  readonly mbps: number;
  readonly outcome: PullOutcome;
  readonly cpu: CpuSpent;
}

async function pullThroughputs(context: ReplicationContext, setup: GlobalSetup): Promise<void> {
  const { config } = context;
  const problems = problemsFromNow(setup.cluster);
  const generated = performance.now();
  const blob = new LargeBlobs(config.blobMiB * 1024 * 1024).variant(0);
  context.log(
    `global: ${config.blobMiB} MiB blob generated in ${Math.round(performance.now() - generated)} ms`,
  );
  const pushTo = setup.cluster.client(region, 2);
  await pushTo.pushMonolithic(repo, blob);
  const path = `/v2/${repo}/blobs/${blob.digest}`;
  const warnings: Record<PullVia, string[]> = { direct: [], proxy: [], redirect: [], hosted: [] };
  // One untimed pull through each endpoint that serves the bytes, with the digest checked.
  for (const [via, origin] of [
    ["proxy", setup.proxy.endpoint.url],
    ["hosted", setup.hosted],
  ] as const) {
    const client = new RegistryClient(origin, 1);
    try {
      const check = await client.pullBlob(repo, blob.digest, true);
      if (check.bodyBytes !== blob.size || check.bodyDigest !== blob.digest) {
        throw new Error(
          `GET ${origin}${path} -> ${check.bodyBytes} bytes hashing to ${check.bodyDigest}, expected ${blob.size} bytes`,
        );
      }
      if (check.headers[servedHeader] !== region) {
        warnings[via].push(
          `GET ${origin}${path} -> X-Meridian-Replica ${check.headers[servedHeader]}`,
        );
      }
    } finally {
      client.close();
    }
  }
  const jobs: Record<PullVia, PullJob> = {
    direct: { url: `${setup.direct}${path}`, expectBytes: blob.size, followRedirect: false },
    proxy: {
      url: `${setup.proxy.endpoint.url}${path}`,
      expectBytes: blob.size,
      followRedirect: false,
    },
    redirect: {
      url: `${setup.redirect.endpoint.url}${path}`,
      expectBytes: blob.size,
      followRedirect: true,
    },
    hosted: { url: `${setup.hosted}${path}`, expectBytes: blob.size, followRedirect: false },
  };
  const vias: readonly PullVia[] = ["direct", "proxy", "redirect", "hosted"];
  const rounds = Math.max(config.repeat, minPullRounds);
  const worker = setup.client;
  const samples: PullSample[] = [];
  const load = loadNote(competitors);
  // Warm-up: one pull of each kind (JIT, page cache, the endpoint's upstream connection).
  for (const via of vias) {
    const outcome = await worker.pull(jobs[via]);
    if (via === "redirect" && outcome.location !== jobs.direct.url) {
      warnings.redirect.push(
        `GET ${jobs.redirect.url} -> 307 to ${outcome.location}, expected ${jobs.direct.url}`,
      );
    }
  }
  // Each round pulls once each way, starting with a different one each round.
  for (let round = 0; round < rounds; round++) {
    for (let step = 0; step < vias.length; step++) {
      const via = vias[(round + step) % vias.length] as PullVia;
      const mark = cpuMark(setup.replicaPid);
      const outcome = await worker.pull(jobs[via]);
      const cpu = cpuSince(mark, setup.replicaPid);
      const mbps = megabytesPerSecond(blob.size, outcome.ms);
      samples.push({ via, mbps, outcome, cpu });
      context.log(`global pull ${via}: ${mbps.toFixed(0)} MB/s`);
    }
  }
  const of = (via: PullVia) => samples.filter((sample) => sample.via === via);
  const rate = (via: PullVia) => median(of(via).map((sample) => sample.mbps));
  const directRate = rate("direct");
  const logged = problems();
  const describe = (via: PullVia): string =>
    `${fmt(rate(via))} MB/s (median of ${of(via)
      .map((sample) => fmt(sample.mbps))
      .join(", ")})`;
  const cpuNote = (via: PullVia): string => {
    const list = of(via);
    const spent = list.reduce((sum, sample) => addSpent(sum, sample.cpu), noCpu);
    const seconds = list.reduce((sum, sample) => sum + sample.outcome.ms / 1000, 0);
    const gb = (blob.size * list.length) / 1e9;
    const client = mean(list.map((sample) => sample.outcome.clientUtilization)) * 100;
    const endpoint =
      via === "direct" || via === "hosted"
        ? ""
        : `endpoint (bench main thread) ${percent((spent.endpoint / seconds) * 100)} = ${fmt((spent.endpoint / gb) * 1000)} ms per GB (event loop busy ${percent((spent.endpointActiveMs / 1000 / seconds) * 100)}, waiting for a CPU ${percent((spent.endpointWait / seconds) * 100)}), `;
    return `${via}: ${endpoint}replica ${percent((spent.replica / seconds) * 100)}, client thread busy ${percent(client)}`;
  };
  const common = `${config.blobMiB} MiB blob, 1 GET at a time from a worker thread (raw socket, new connection per request), ${rounds} rounds of direct/proxy/redirect/hosted in rotating order after one warm-up pull of each`;
  const what: Record<Exclude<PullVia, "direct">, string> = {
    proxy: "through a global endpoint of its own in proxy mode (to a replica in another process)",
    redirect: "through the global endpoint in redirect mode (both requests timed)",
    hosted: `through the global endpoint hosted in ${region}'s process (served in-process)`,
  };
  for (const via of ["proxy", "redirect", "hosted"] as const) {
    const ratio = rate(via) / directRate;
    const perRound = of(via).map((sample, index) => {
      const direct = of("direct")[index];
      return direct ? sample.mbps / direct.mbps : Number.NaN;
    });
    const redirectNote =
      via === "redirect"
        ? [
            `the 307 from the endpoint took ${median(of(via).map((sample) => sample.outcome.redirectMs ?? Number.NaN)).toFixed(2)} ms (median; new connection), then GET of its Location ${of(via)[0]?.outcome.location ?? "?"}`,
          ]
        : [];
    context.log(`global pull ${via}: endpoint/direct ${ratio.toFixed(2)}`);
    context.report(figureIds[via], ratio, {
      warnings: [...warnings[via], ...logged],
      samples: perRound,
      notes: [
        `${what[via]}: ${describe(via)}; direct to ${region}: ${describe("direct")}; ${goalNote(ratio, throughputGoal)}`,
        ...redirectNote,
        common,
        `CPU (% of one core, over the pulls) ${cpuNote(via)}; ${cpuNote("direct")}`,
        load,
      ],
    });
  }
}

export const globalEndpointScenario: ReplicationScenario = {
  id: "global",
  figures: (config: BenchConfig) => [
    {
      id: figureIds.manifest,
      label: `Global endpoint (proxy) / direct: manifest GET by tag, c=${config.rpsConcurrency} (goal >= ${rateGoal})`,
      unit: "x endpoint/direct",
      better: "higher",
      meridianOnly: true,
    },
    {
      id: figureIds.hostedManifest,
      label: `  same, endpoint hosted by the replica it routes to (goal >= ${rateGoal})`,
      unit: "x endpoint/direct",
      better: "higher",
      meridianOnly: true,
    },
    {
      id: figureIds.proxy,
      label: `Global endpoint (proxy) / direct: ${config.blobMiB} MiB blob pull, 1 GET (goal >= ${throughputGoal})`,
      unit: "x endpoint/direct",
      better: "higher",
      meridianOnly: true,
    },
    {
      id: figureIds.redirect,
      label: `  same, redirect mode: 307, then GET of the Location (goal >= ${throughputGoal})`,
      unit: "x endpoint/direct",
      better: "higher",
      meridianOnly: true,
    },
    {
      id: figureIds.hosted,
      label: `  same, endpoint hosted by the replica it routes to (goal >= ${throughputGoal})`,
      unit: "x endpoint/direct",
      better: "higher",
      meridianOnly: true,
    },
  ],
  async run(context) {
    await withGlobalSetup(context, async (setup) => {
      await measureGroup(
        context,
        setup.cluster,
        [figureIds.manifest, figureIds.hostedManifest],
        () => manifestRates(context, setup),
      );
      await measureGroup(
        context,
        setup.cluster,
        [figureIds.proxy, figureIds.redirect, figureIds.hosted],
        () => pullThroughputs(context, setup),
      );
    });
  },
};
