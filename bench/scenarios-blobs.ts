// Large-blob scenarios: monolithic and chunked push throughput, pull throughput at
// concurrency 1 and 4, and the server's peak RSS during many concurrent uploads.
import { performance } from "node:perf_hooks";
import type { BlobSource } from "./blob-data.ts";
import { withClientThread } from "./client-thread.ts";
import {
  clientBoundWarning,
  cpuNote,
  describeBlob,
  median,
  megabytesPerSecond,
  percent,
  type Scenario,
  type ScenarioContext,
} from "./figures.ts";
import { peakRssMiB, resetPeakRss, rssMiB, sampleRss, withServerCpu } from "./host.ts";
import { RegistryClient } from "./registry-client.ts";

/** Variant numbers of the large blob, so that every push uploads content new to the registry. */
const variants = { mono: 0, chunked: 100, pull: 200, rss: 300 } as const;

/** HEAD the blob and compare Content-Length and Docker-Content-Digest; returns problems. */
async function verifyStored(
  client: RegistryClient,
  repo: string,
  blob: BlobSource,
): Promise<string[]> {
  const reply = await client.headBlob(repo, blob.digest);
  const problems: string[] = [];
  const request = `HEAD /v2/${repo}/blobs/${blob.digest}`;
  if (reply.headers["content-length"] !== String(blob.size)) {
    problems.push(
      `${request} -> Content-Length ${reply.headers["content-length"]}, expected ${blob.size}`,
    );
  }
  const digest = reply.headers["docker-content-digest"];
  if (digest !== undefined && digest !== blob.digest) {
    problems.push(`${request} -> Docker-Content-Digest ${digest}`);
  }
  return problems;
}

async function timedPushes(
  context: ScenarioContext,
  figureId: string,
  repo: string,
  firstVariant: number,
  push: (client: RegistryClient, blob: BlobSource) => Promise<void>,
): Promise<void> {
  const client = new RegistryClient(context.target.url, 2);
  try {
    const samples: number[] = [];
    const cpu: number[] = [];
    const clientCpu: number[] = [];
    let last: BlobSource | undefined;
    for (let round = 0; round < context.config.repeat; round++) {
      const blob = context.data.blobs.variant(firstVariant + round);
      const {
        result: ms,
        serverCpuPercent,
        clientCpuPercent,
      } = await withServerCpu(context.target.pid, async () => {
        const start = performance.now();
        await push(client, blob);
        return performance.now() - start;
      });
      samples.push(megabytesPerSecond(blob.size, ms));
      cpu.push(serverCpuPercent);
      clientCpu.push(clientCpuPercent);
      context.log(`${figureId} ${describeBlob(blob)}: ${samples.at(-1)?.toFixed(0)} MB/s`);
      last = blob;
    }
    const warnings = last ? await verifyStored(client, repo, last) : [];
    context.report(figureId, median(samples), {
      samples,
      warnings,
      notes: [cpuNote(median(cpu), median(clientCpu))],
    });
  } finally {
    client.close();
  }
}

export const pushMonolithic: Scenario = {
  id: "push-mono",
  figures: (config) => [
    {
      id: "push-mono",
      label: `${config.blobMiB} MiB blob push, monolithic PUT`,
      unit: "MB/s",
      better: "higher",
    },
  ],
  run: (context) =>
    timedPushes(context, "push-mono", "bench/blob-mono", variants.mono, (client, blob) =>
      client.pushMonolithic("bench/blob-mono", blob),
    ),
};

export const pushChunked: Scenario = {
  id: "push-chunked",
  figures: (config) => [
    {
      id: "push-chunked",
      label: `${config.blobMiB} MiB blob push, ${config.chunkMiB} MiB PATCH chunks`,
      unit: "MB/s",
      better: "higher",
    },
  ],
  run: (context) =>
    timedPushes(context, "push-chunked", "bench/blob-chunked", variants.chunked, (client, blob) =>
      client.pushChunked("bench/blob-chunked", blob, context.config.chunkMiB * 1024 * 1024),
    ),
};

export const pull: Scenario = {
  id: "pull",
  figures: (config) => [
    {
      id: "pull-c1",
      label: `${config.blobMiB} MiB blob pull, 1 GET`,
      unit: "MB/s",
      better: "higher",
    },
    {
      id: "pull-c4",
      label: `${config.blobMiB} MiB blob pull, 4 parallel GETs`,
      unit: "MB/s",
      better: "higher",
    },
  ],
  async run(context) {
    const repo = "bench/blob-pull";
    const blob = context.data.blobs.variant(variants.pull);
    const client = new RegistryClient(context.target.url, 4);
    try {
      try {
        await client.pushMonolithic(repo, blob);
      } catch (monolithicError) {
        context.log(`pull setup: monolithic push failed, trying chunked: ${monolithicError}`);
        try {
          await client.pushChunked(repo, blob, context.config.chunkMiB * 1024 * 1024);
        } catch (chunkedError) {
          throw new Error(
            `setup push failed; monolithic: ${(monolithicError as Error).message}; chunked: ${(chunkedError as Error).message}`,
          );
        }
      }
      // One untimed pull with the digest checked; the timed ones only count bytes.
      const check = await client.pullBlob(repo, blob.digest, true);
      if (check.bodyBytes !== blob.size || check.bodyDigest !== blob.digest) {
        throw new Error(
          `GET /v2/${repo}/blobs/${blob.digest} -> ${check.bodyBytes} bytes hashing to ${check.bodyDigest}, expected ${blob.size} bytes`,
        );
      }
      // Timed pulls use the raw-socket reader in the client thread (timed-pull.ts), so that
      // the client is not the bottleneck.
      const url = `${context.target.url}/v2/${repo}/blobs/${blob.digest}`;
      await withClientThread(async (thread) => {
        for (const parallel of [1, 4]) {
          const figureId = `pull-c${parallel}`;
          await context.measure(figureId, async () => {
            const samples: number[] = [];
            const cpu: number[] = [];
            const clientCpu: number[] = [];
            const busy: number[] = [];
            for (let round = 0; round < context.config.repeat; round++) {
              const job = { url, expectBytes: blob.size, followRedirect: false, parallel };
              const { result, serverCpuPercent, clientCpuPercent } = await withServerCpu(
                context.target.pid,
                () => thread.pull(job),
              );
              samples.push(megabytesPerSecond(blob.size * parallel, result.ms));
              cpu.push(serverCpuPercent);
              clientCpu.push(clientCpuPercent);
              busy.push(result.clientUtilization);
              context.log(`${figureId}: ${samples.at(-1)?.toFixed(0)} MB/s`);
            }
            context.report(figureId, median(samples), {
              samples,
              warnings: clientBoundWarning(median(busy)),
              notes: [
                `${cpuNote(median(cpu), median(clientCpu))}, client thread busy ${percent(median(busy) * 100)}`,
              ],
            });
          });
        }
      });
    } finally {
      client.close();
    }
  },
};

export const uploadMemory: Scenario = {
  id: "rss",
  figures: (config) => [
    {
      id: "rss-peak",
      label: `Peak server RSS, ${config.rssUploads} concurrent ${config.rssBlobMiB} MiB uploads`,
      unit: "MiB",
      better: "lower",
    },
    {
      id: "rss-throughput",
      label: `  aggregate push rate of those uploads`,
      unit: "MB/s",
      better: "higher",
    },
  ],
  async run(context) {
    const repo = "bench/blob-rss";
    const count = context.config.rssUploads;
    const pid = context.target.pid;
    const blobs = Array.from({ length: count }, (_, index) =>
      context.data.rssBlobs.variant(variants.rss + index),
    );
    const client = new RegistryClient(context.target.url, count);
    try {
      const idle = rssMiB(pid);
      const peakWasReset = resetPeakRss(pid);
      const sampler = sampleRss(pid);
      const start = performance.now();
      const {
        result: outcomes,
        serverCpuPercent,
        clientCpuPercent,
      } = await withServerCpu(pid, () =>
        Promise.allSettled(blobs.map((blob) => client.pushMonolithic(repo, blob))),
      );
      const ms = performance.now() - start;
      const sampled = sampler.stop();
      const peak = peakWasReset ? Math.max(sampled, peakRssMiB(pid)) : sampled;
      const failures = outcomes.filter(
        (outcome): outcome is PromiseRejectedResult => outcome.status === "rejected",
      );
      if (failures.length > 0) {
        const first = failures[0]?.reason;
        throw new Error(
          `${failures.length} of ${count} uploads failed (peak RSS seen ${peak.toFixed(0)} MiB); first: ${first instanceof Error ? first.message : String(first)}`,
        );
      }
      context.report("rss-peak", peak, {
        notes: [
          `RSS before ${idle.toFixed(0)} MiB; ${peakWasReset ? "VmHWM reset before, max of VmHWM and" : "max of"} VmRSS sampled every 20 ms`,
        ],
      });
      context.report(
        "rss-throughput",
        megabytesPerSecond(blobs.length * (blobs[0]?.size ?? 0), ms),
        {
          notes: [cpuNote(serverCpuPercent, clientCpuPercent)],
        },
      );
    } finally {
      client.close();
    }
  },
};
