// One-off comparison of the global endpoint's two read relays (hand-written HTTP/1.1 client
// and undici) in one run on one machine: a one-replica cluster, two proxy-mode endpoints in
// this process's main thread (one per relay, MERIDIAN_READ_RELAY chooses at construction),
// clients in worker threads (http-load.ts, timed-pull.ts), direct figures for reference.
// Manifest GET rate at c=32 and BENCH_BLOB_MIB blob pulls with 1 and 4 concurrent GETs,
// REPEAT rounds each in rotating order; medians and ranges.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import pino from "pino";
import type { Config } from "../src/config/config-schema.ts";
import { loadConfig } from "../src/config/load-config.ts";
import {
  type StartedGlobalEndpoint,
  startGlobalEndpoint,
} from "../src/routing/start-global-endpoint.ts";
import { LargeBlobs, makeSmallImage, ociManifestType } from "./blob-data.ts";
import { median, megabytesPerSecond } from "./figures.ts";
import { runLoadInWorker } from "./http-load.ts";
import { BenchCluster } from "./meridian-cluster.ts";
import { RegistryClient } from "./registry-client.ts";
import { PullWorker } from "./timed-pull.ts";

const region = "westus";
const repo = "bench/relay";
const repeat = Number(process.env.BENCH_REPEAT ?? 5);
const blobMiB = Number(process.env.BENCH_BLOB_MIB ?? 256);
const rpsSeconds = Number(process.env.BENCH_RPS_SECONDS ?? 5);
type Via = "direct" | "hand" | "undici";
const vias: readonly Via[] = ["direct", "hand", "undici"];

function mainThreadCpu(): number {
  const [cpu] = readFileSync(`/proc/${process.pid}/task/${process.pid}/schedstat`, "utf8").split(
    " ",
  );
  return Number(cpu) / 1e9;
}

function endpointConfig(config: Config): Config {
  return {
    ...config,
    globalEndpoint: {
      listen: "127.0.0.1:0",
      mode: "proxy",
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

function summary(values: readonly number[], digits = 0): string {
  const sorted = [...values].sort((a, b) => a - b);
  const f = (v: number) => v.toFixed(digits);
  return `median ${f(median(values))} (range ${f(sorted[0] ?? NaN)}-${f(sorted.at(-1) ?? NaN)}; runs ${values.map(f).join(", ")})`;
}

async function main(): Promise<void> {
  const cluster = await BenchCluster.start({ regions: [region] });
  const endpoints: StartedGlobalEndpoint[] = [];
  try {
    await cluster.waitConnected();
    const config = await loadConfig(
      { file: join(cluster.dir, "meridian.yaml"), env: {} },
      { topologyOnly: true },
    );
    const logger = pino({ level: "silent" });
    process.env.MERIDIAN_READ_RELAY = "hand";
    const hand = await startGlobalEndpoint(endpointConfig(config), logger, {
      listen: "127.0.0.1:0",
    });
    endpoints.push(hand);
    delete process.env.MERIDIAN_READ_RELAY;
    const undici = await startGlobalEndpoint(endpointConfig(config), logger, {
      listen: "127.0.0.1:0",
    });
    endpoints.push(undici);
    const origins: Record<Via, string> = {
      direct: cluster.url(region),
      hand: hand.endpoint.url,
      undici: undici.endpoint.url,
    };
    const push = cluster.client(region, 2);
    const image = makeSmallImage();
    for (const blob of [image.config, ...image.layers]) await push.pushSmallBlob(repo, blob);
    await push.putManifest(repo, "latest", image.manifest.data, ociManifestType);
    const blob = new LargeBlobs(blobMiB * 1024 * 1024).variant(0);
    await push.pushMonolithic(repo, blob);
    push.close();
    for (const via of ["hand", "undici"] as const) {
      const client = new RegistryClient(origins[via], 1);
      const check = await client.pullBlob(repo, blob.digest, true);
      client.close();
      if (check.bodyBytes !== blob.size || check.bodyDigest !== blob.digest)
        throw new Error(`${via}: blob through the endpoint differs`);
    }

    // Manifest GET rate, c=32.
    const rates: Record<Via, number[]> = { direct: [], hand: [], undici: [] };
    const rateCpu: Record<Via, number[]> = { direct: [], hand: [], undici: [] };
    for (let round = 0; round < repeat; round++) {
      for (let step = 0; step < vias.length; step++) {
        const via = vias[(round + step) % vias.length] as Via;
        const before = mainThreadCpu();
        const result = await runLoadInWorker({
          origin: origins[via],
          method: "GET",
          path: `/v2/${repo}/manifests/latest`,
          headers: { accept: ociManifestType },
          expectStatus: [200],
          concurrency: 32,
          durationMs: rpsSeconds * 1000,
          maxRequests: 10_000_000,
          warmupMs: 1000,
        });
        const cpu = mainThreadCpu() - before;
        if (result.errors > 0)
          console.error(`${via}: ${result.errors} errors: ${result.firstError}`);
        rates[via].push(result.perSecond);
        rateCpu[via].push((cpu / (result.perSecond * (rpsSeconds + 1))) * 1e6);
        console.error(
          `manifest GET ${via}: ${result.perSecond.toFixed(0)}/s (client busy ${(result.clientUtilization * 100).toFixed(0)}%)`,
        );
      }
    }

    // Blob pulls, 1 and 4 concurrent GETs.
    const workers = await Promise.all([0, 1, 2, 3].map(() => PullWorker.start()));
    const pulls: Record<string, number[]> = {};
    const pullCpu: Record<string, number[]> = {};
    try {
      for (const via of vias)
        await workers[0]?.pull({
          url: `${origins[via]}/v2/${repo}/blobs/${blob.digest}`,
          expectBytes: blob.size,
          followRedirect: false,
        });
      for (const concurrency of [1, 4]) {
        for (let round = 0; round < repeat; round++) {
          for (let step = 0; step < vias.length; step++) {
            const via = vias[(round + step) % vias.length] as Via;
            const job = {
              url: `${origins[via]}/v2/${repo}/blobs/${blob.digest}`,
              expectBytes: blob.size,
              followRedirect: false,
            };
            const before = mainThreadCpu();
            const started = performance.now();
            await Promise.all(workers.slice(0, concurrency).map((worker) => worker.pull(job)));
            const ms = performance.now() - started;
            const cpu = mainThreadCpu() - before;
            const key = `${via} c=${concurrency}`;
            const mbps = megabytesPerSecond(blob.size * concurrency, ms);
            (pulls[key] ??= []).push(mbps);
            (pullCpu[key] ??= []).push((cpu / ((blob.size * concurrency) / 1e9)) * 1000);
            console.error(`pull ${key}: ${mbps.toFixed(0)} MB/s`);
          }
        }
      }
    } finally {
      await Promise.all(workers.map((worker) => worker.close()));
    }
    console.log(
      `\n${blobMiB} MiB blob, ${repeat} rounds in rotating order; endpoint CPU = bench main thread`,
    );
    for (const via of vias) {
      console.log(
        `manifest GET c=32 ${via}: ${summary(rates[via])} req/s; endpoint CPU ${summary(rateCpu[via])} us/request`,
      );
    }
    for (const key of Object.keys(pulls)) {
      console.log(
        `pull ${key}: ${summary(pulls[key] ?? [])} MB/s; endpoint CPU ${summary(pullCpu[key] ?? [])} ms/GB`,
      );
    }
  } finally {
    await Promise.allSettled(endpoints.map((endpoint) => endpoint.close()));
    await cluster.stop();
  }
}

await main();
