// Replication figures, Meridian only: each scenario starts its own multi-region Meridian on
// loopback (bench/bench-cluster.ts) and measures, between region A (westus) and region B
// (eastus): the lag from a push accepted in A to the tag visible in B at 0 and 50 ms of
// emulated round trip, the replication rate of a large image over a 100 MB/s link, the
// cross-region bytes per unique blob byte, and the idle cost of a replica following two peers.
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { setTimeout as delay } from "node:timers/promises";
import { type BenchCluster, withCluster } from "./bench-cluster.ts";
import {
  type BlobSource,
  imageOf,
  LargeBlobs,
  makeSmallImage,
  ociManifestType,
  type SmallBlob,
  sha256,
} from "./blob-data.ts";
import type { BenchConfig } from "./config.ts";
import {
  errorText,
  megabytesPerSecond,
  mib,
  percent,
  percentile,
  type ScenarioContext,
} from "./figures.ts";
import { cpuSeconds, loadNote as machineLoadNote, rssMiB } from "./host.ts";
import { RegistryClient, RegistryError, withParam } from "./registry-client.ts";
import type { MeridianOnlySpec } from "./report.ts";

/** What a replication scenario gets: no single registry under test, it starts its own cluster. */
export type ReplicationContext = Omit<ScenarioContext, "target" | "data">;

export interface ReplicationScenario {
  readonly id: string;
  figures(config: BenchConfig): readonly MeridianOnlySpec[];
  /** An error thrown here fails every figure of the scenario not reported yet. */
  run(context: ReplicationContext): Promise<void>;
}

const regionA = "westus";
const regionB = "eastus";
const regionC = "westeurope";

const bytesReceivedMetric = "meridian_replication_bytes_received_total";
const feedErrorsMetric = "meridian_replication_feed_errors_total";

/**
 * Runs `work`; if it throws, every figure of `ids` is failed with that error and the
 * warnings and errors the replicas logged (a 500 is logged with its cause).
 */
export async function measureGroup(
  context: ReplicationContext,
  cluster: BenchCluster,
  ids: readonly string[],
  work: () => Promise<void>,
): Promise<void> {
  try {
    await work();
  } catch (error) {
    const logged = cluster.problemSummary();
    const failure = new Error(
      logged.length > 0 ? `${errorText(error)}; ${logged.join("; ")}` : errorText(error),
    );
    for (const id of ids) await context.measure(id, () => Promise.reject(failure));
  }
}

function loadNote(): string {
  return machineLoadNote("the replicas and the WAN emulator");
}

function ms(value: number): string {
  return `${value.toFixed(value >= 100 ? 0 : 1)} ms`;
}

interface VisibilityPoll {
  /** Concurrent pollers, started `intervalMs / pollers` apart. */
  readonly pollers: number;
  /** Pause of each poller between two answers. */
  readonly intervalMs: number;
  readonly timeoutMs: number;
}

/**
 * Polls GET /v2/<repo>/tags/list on `client` (region B) until it lists `tag`; returns when
 * that answer arrived (performance.now()) and the number of GETs sent. Then checks that
 * GET /v2/<repo>/manifests/<tag> answers 200 with `digest`.
 *
 * Why the tag list and not GET of the manifest: a GET of a manifest that B lacks reads
 * through to the peers (src/replication/peer-content-source.ts), so it would answer 200 as
 * soon as B had fetched it on demand, measuring read-through rather than replication (and
 * changing what replication has left to do). The tag list is served from B's own metadata,
 * and B stores a tag only once its manifest and blobs are there.
 */
async function waitTagged(
  client: RegistryClient,
  repo: string,
  tag: string,
  digest: string,
  poll: VisibilityPoll,
): Promise<{ at: number; polls: number }> {
  const path = `/v2/${repo}/tags/list`;
  const started = performance.now();
  const deadline = started + poll.timeoutMs;
  let found: number | undefined;
  let failure: Error | undefined;
  let polls = 0;
  let last = "no answer yet";
  const poller = async (offsetMs: number): Promise<void> => {
    if (offsetMs > 0) await delay(offsetMs);
    while (found === undefined && failure === undefined) {
      if (performance.now() > deadline) {
        failure ??= new Error(
          `GET ${path} still without ${tag} ${Math.round(performance.now() - started)} ms after the push; last answer: ${last}`,
        );
        return;
      }
      let reply: Awaited<ReturnType<RegistryClient["send"]>>;
      try {
        polls += 1;
        reply = await client.send("GET", path);
      } catch (error) {
        failure ??= error as Error;
        return;
      }
      const receivedAt = performance.now();
      const text = reply.body.toString("utf8");
      if (reply.status === 200) {
        let tags: unknown;
        try {
          tags = (JSON.parse(text) as { tags?: unknown }).tags;
        } catch {
          tags = undefined;
        }
        if (!Array.isArray(tags)) {
          failure ??= new RegistryError(`GET ${path}`, 200, text.slice(0, 300), "no tags list");
          return;
        }
        if (tags.includes(tag)) {
          if (found === undefined || receivedAt < found) found = receivedAt;
          return;
        }
        last = `HTTP 200 with ${tags.length} tags, not ${tag}`;
      } else if (reply.status === 404) {
        // The repository does not exist in B yet.
        last = `HTTP 404 ${text.slice(0, 200)}`;
      } else {
        failure ??= new RegistryError(
          `GET ${path}`,
          reply.status,
          text.slice(0, 300),
          "expected 200 or 404",
        );
        return;
      }
      await delay(poll.intervalMs);
    }
  };
  await Promise.all(
    Array.from({ length: poll.pollers }, (_, index) =>
      poller((index * poll.intervalMs) / poll.pollers),
    ),
  );
  if (failure) throw failure;
  const manifestPath = `/v2/${repo}/manifests/${tag}`;
  const reply = await client.expect("GET", manifestPath, [200], {
    headers: { accept: ociManifestType },
  });
  const served = reply.headers["docker-content-digest"] ?? sha256(reply.body);
  if (served !== digest) {
    throw new RegistryError(
      `GET ${manifestPath}`,
      200,
      "",
      `Docker-Content-Digest ${served}, expected ${digest}`,
    );
  }
  return { at: found ?? performance.now(), polls };
}

/**
 * Snapshot of the replicas' feed-error counters and logged warnings; the function it returns
 * lists what appeared since, as warnings of the figure.
 */
async function healthProbe(
  cluster: BenchCluster,
  regions: readonly string[],
): Promise<() => Promise<string[]>> {
  const errorsBefore = new Map<string, number>();
  for (const region of regions) {
    errorsBefore.set(region, await cluster.metric(region, feedErrorsMetric));
  }
  const linesBefore = new Map(
    regions.map((region) => [region, cluster.problemLines.get(region)?.length ?? 0]),
  );
  return async () => {
    const warnings: string[] = [];
    for (const region of regions) {
      const errors =
        (await cluster.metric(region, feedErrorsMetric).catch(() => Number.NaN)) -
        (errorsBefore.get(region) ?? 0);
      if (errors !== 0) warnings.push(`${region}: ${feedErrorsMetric} grew by ${errors}`);
      const lines = (cluster.problemLines.get(region) ?? []).slice(linesBefore.get(region) ?? 0);
      if (lines.length > 0) {
        warnings.push(`${region} logged ${lines.length} warning/error line(s); first: ${lines[0]}`);
      }
    }
    return warnings;
  };
}

// ---------------------------------------------------------------------------------------------
// 1. Replication lag

const lagRtts = [0, 50] as const;
const lagPoll: VisibilityPoll = { pollers: 3, intervalMs: 3, timeoutMs: 60_000 };
const lagWarmupImages = 3;

export const replicationLag: ReplicationScenario = {
  id: "repl-lag",
  figures: (config) =>
    lagRtts.flatMap((rtt) =>
      (["p50", "p99"] as const).map((p) => ({
        id: `repl-lag-${rtt}ms-${p}`,
        label: `Replication lag A->B, ${rtt} ms RTT, ${p} of ${config.replLagImages} small images`,
        unit: "ms",
        better: "lower" as const,
        meridianOnly: true as const,
      })),
    ),
  async run(context) {
    const count = context.config.replLagImages;
    await withCluster(
      context,
      { regions: [regionA, regionB], wan: { rttMs: 0 } },
      async (cluster) => {
        const pushTo = cluster.client(regionA, 4);
        const watch = cluster.client(regionB, lagPoll.pollers);
        const repo = "bench/repl-lag";
        for (const rtt of lagRtts) {
          const ids = [`repl-lag-${rtt}ms-p50`, `repl-lag-${rtt}ms-p99`];
          await measureGroup(context, cluster, ids, async () => {
            cluster.cluster.link(regionA, regionB).setRtt(rtt);
            cluster.cluster.link(regionB, regionA).setRtt(rtt);
            // Let a long-poll in flight with the old latency come back.
            await delay(2 * rtt + 50);
            const health = await healthProbe(cluster, [regionA, regionB]);
            const load = loadNote();
            const lags: number[] = [];
            let polls = 0;
            let pushMs = 0;
            for (let index = -lagWarmupImages; index < count; index++) {
              const image = makeSmallImage();
              const tag = `rtt${rtt}-${index < 0 ? `warmup${-index}` : `img${index}`}`;
              const pushStart = performance.now();
              await pushTo.pushImage(repo, image, tag);
              const accepted = performance.now();
              const seen = await waitTagged(watch, repo, tag, image.manifest.digest, lagPoll);
              if (index < 0) continue;
              pushMs += accepted - pushStart;
              lags.push(Math.max(0, seen.at - accepted));
              polls += seen.polls;
            }
            const p50 = percentile(lags, 0.5);
            const p99 = percentile(lags, 0.99);
            const mean = lags.reduce((sum, value) => sum + value, 0) / lags.length;
            context.log(`repl-lag ${rtt} ms RTT: p50 ${ms(p50)}, p99 ${ms(p99)}`);
            const warnings = await health();
            context.report(`repl-lag-${rtt}ms-p50`, p50, {
              samples: lags,
              warnings,
              notes: [
                `${count} images (config + 2 x 4 KiB layers + manifest) pushed one after another to ${regionA} after ${lagWarmupImages} warm-up ones, each once the previous was visible in ${regionB}; lag = manifest PUT 201 in ${regionA} -> first GET /v2/<repo>/tags/list in ${regionB} listing the tag (not GET of the manifest: that reads through to ${regionA}), the manifest GET checked after`,
                `min ${ms(Math.min(...lags))}, mean ${ms(mean)}, max ${ms(Math.max(...lags))}; push itself ${ms(pushMs / count)} per image`,
                `${lagPoll.pollers} concurrent pollers, ${lagPoll.intervalMs} ms pause each (${(polls / count).toFixed(1)} tag-list GETs per image)`,
              ],
            });
            context.report(`repl-lag-${rtt}ms-p99`, p99, {
              notes: [
                `2 replicas; WAN emulator between them with ${rtt} ms round trip, no bandwidth cap`,
                load,
              ],
            });
          });
        }
      },
    );
  },
};

// ---------------------------------------------------------------------------------------------
// 2. Replication throughput of a large image

const throughputRttMs = 20;
const throughputLayers = 4;

/** POST + one PATCH with the whole blob; the upload stays open (no replication yet). */
async function stageUpload(
  client: RegistryClient,
  repo: string,
  blob: BlobSource,
): Promise<string> {
  const post = `/v2/${repo}/blobs/uploads/`;
  const started = await client.expect("POST", post, [202]);
  const upload = client.locationPath(`POST ${post}`, started);
  const patched = await client.expect("PATCH", upload, [202], {
    headers: {
      "content-type": "application/octet-stream",
      "content-range": `0-${blob.size - 1}`,
    },
    body: { source: blob, start: 0, end: blob.size },
  });
  return client.locationPath(`PATCH ${upload}`, patched);
}

export const replicationThroughput: ReplicationScenario = {
  id: "repl-throughput",
  figures: (config) => [
    {
      id: "repl-throughput",
      label: `Replication of a ${config.replImageMiB} MiB image A->B, ${config.replLinkMBps} MB/s link, ${throughputRttMs} ms RTT`,
      unit: "MB/s",
      better: "higher",
      meridianOnly: true,
    },
    {
      id: "repl-throughput-share",
      label: "  same, as a fraction of the link rate (goal >= 0.8)",
      unit: "fraction",
      better: "higher",
      meridianOnly: true,
    },
  ],
  async run(context) {
    const { replImageMiB, replLinkMBps } = context.config;
    const linkRate = replLinkMBps * 1e6;
    const layerBytes = Math.floor((replImageMiB * 1024 * 1024) / throughputLayers);
    const generated = performance.now();
    const data = new LargeBlobs(layerBytes);
    const layers = Array.from({ length: throughputLayers }, (_, index) => data.variant(index));
    const { config, manifest } = imageOf(layers, {
      created: new Date().toISOString(),
      nonce: randomBytes(8).toString("hex"),
    });
    const imageBytes = layers.reduce((sum, layer) => sum + layer.size, config.data.length);
    context.log(
      `repl-throughput: ${throughputLayers} layers of ${mib(layerBytes).toFixed(0)} MiB generated in ${Math.round(performance.now() - generated)} ms`,
    );
    await withCluster(
      context,
      { regions: [regionA, regionB], wan: { rttMs: throughputRttMs, bytesPerSecond: linkRate } },
      async (cluster) => {
        const ids = ["repl-throughput", "repl-throughput-share"];
        await measureGroup(context, cluster, ids, async () => {
          const pushTo = new RegistryClient(cluster.url(regionA), 2);
          const watch = cluster.client(regionB, 2);
          const repo = "bench/repl-big";
          const tag = "v1";
          const health = await healthProbe(cluster, [regionA, regionB]);
          const load = loadNote();
          try {
            // Stage every layer in A as an open upload: nothing replicates before the commits.
            const staged = performance.now();
            const uploads: string[] = [];
            for (const layer of layers) uploads.push(await stageUpload(pushTo, repo, layer));
            await pushTo.pushSmallBlob(repo, config);
            context.log(
              `repl-throughput: ${replImageMiB} MiB staged in ${regionA} in ${Math.round(performance.now() - staged)} ms`,
            );
            await delay(1000);
            const fetchLink = cluster.cluster.link(regionB, regionA);
            const linkBefore = fetchLink.stats();
            const receivedBefore = await cluster.metric(regionB, bytesReceivedMetric);
            const cpuA = cpuSeconds(cluster.pid(regionA));
            const cpuB = cpuSeconds(cluster.pid(regionB));
            const clientCpu = process.cpuUsage();
            const commitStart = performance.now();
            for (const [index, layer] of layers.entries()) {
              const upload = uploads[index] as string;
              await pushTo.expect("PUT", withParam(upload, "digest", layer.digest), [201]);
            }
            await pushTo.putManifest(repo, tag, manifest.data, ociManifestType);
            const accepted = performance.now();
            const receivedAtAccept =
              (await cluster.metric(regionB, bytesReceivedMetric)) - receivedBefore;
            const expectedSeconds = imageBytes / linkRate;
            const seen = await waitTagged(watch, repo, tag, manifest.digest, {
              pollers: 2,
              intervalMs: 5,
              timeoutMs: (expectedSeconds * 4 + 60) * 1000,
            });
            const wallSeconds = (seen.at - commitStart) / 1000;
            const serverCpuA = ((cpuSeconds(cluster.pid(regionA)) - cpuA) / wallSeconds) * 100;
            const serverCpuB = ((cpuSeconds(cluster.pid(regionB)) - cpuB) / wallSeconds) * 100;
            const client = process.cpuUsage(clientCpu);
            const benchCpu = ((client.user + client.system) / 1e6 / wallSeconds) * 100;
            const linkAfter = fetchLink.stats();
            const received = (await cluster.metric(regionB, bytesReceivedMetric)) - receivedBefore;
            const rate = megabytesPerSecond(imageBytes, seen.at - accepted);
            const fromCommit = megabytesPerSecond(imageBytes, seen.at - commitStart);
            const wire = linkAfter.bytesBackward - linkBefore.bytesBackward;
            // Every layer must be in B with its size (B verified the digests while fetching).
            const warnings: string[] = [];
            for (const layer of layers) {
              const head = await watch.headBlob(repo, layer.digest);
              if (head.headers["content-length"] !== String(layer.size)) {
                warnings.push(
                  `HEAD /v2/${repo}/blobs/${layer.digest} on ${regionB} -> Content-Length ${head.headers["content-length"]}, expected ${layer.size}`,
                );
              }
            }
            if (received < imageBytes - config.data.length) {
              warnings.push(
                `${regionB} counted ${received} bytes received, less than the ${imageBytes} of the image`,
              );
            }
            warnings.push(...(await health()));
            context.log(
              `repl-throughput: ${rate.toFixed(1)} MB/s (${(rate / replLinkMBps).toFixed(2)} of the link)`,
            );
            context.report("repl-throughput", rate, {
              warnings,
              notes: [
                `${throughputLayers} layers of ${mib(layerBytes).toFixed(0)} MiB staged in ${regionA} as open uploads, then committed (PUT ?digest=) and the manifest PUT; ${((accepted - commitStart) / 1000).toFixed(2)} s from the first commit to the manifest 201, ${((seen.at - accepted) / 1000).toFixed(2)} s from there to the tag visible in ${regionB}`,
                `${(receivedAtAccept / 1e6).toFixed(1)} MB had reached ${regionB} when the manifest PUT was accepted; from the first commit: ${fromCommit.toFixed(1)} MB/s (${(fromCommit / replLinkMBps).toFixed(2)} of the link)`,
                `${regionA}->${regionB} direction of the link carried ${(wire / 1e6).toFixed(1)} MB for ${(imageBytes / 1e6).toFixed(1)} MB of image (${regionB} counted ${(received / 1e6).toFixed(1)} MB received)`,
                `CPU (% of one core) from the first commit to visible: ${regionA} ${percent(serverCpuA)}, ${regionB} ${percent(serverCpuB)}, bench process (WAN emulator, pollers) ${percent(benchCpu)}`,
              ],
            });
            context.report("repl-throughput-share", rate / replLinkMBps, {
              notes: [
                `link rate ${replLinkMBps} MB/s per direction (WAN emulator bytesPerSecond)`,
                load,
              ],
            });
          } finally {
            pushTo.close();
          }
        });
      },
    );
  },
};

// ---------------------------------------------------------------------------------------------
// 3. Cross-region bytes per unique blob byte

const bytesBaseMiB = 16;
const bytesTopMiB = 4;
const bytesImages = 3;
const bytesRepos = ["bench/repl-bytes-one", "bench/repl-bytes-two"] as const;

/** Pushes a blob unless the repository has it already (HEAD first, as clients do). */
async function pushIfMissing(
  client: RegistryClient,
  repo: string,
  blob: BlobSource,
): Promise<number> {
  const head = await client.send("HEAD", `/v2/${repo}/blobs/${blob.digest}`);
  if (head.status === 200) return 0;
  if (head.status !== 404) {
    throw new RegistryError(
      `HEAD /v2/${repo}/blobs/${blob.digest}`,
      head.status,
      "",
      "expected 200 or 404",
    );
  }
  await client.pushMonolithic(repo, blob);
  return blob.size;
}

function smallSource(blob: SmallBlob): BlobSource {
  return {
    size: blob.data.length,
    digest: blob.digest,
    *slices(start: number, end: number, sliceSize: number): Iterable<Buffer> {
      for (let offset = start; offset < end; offset += sliceSize) {
        yield blob.data.subarray(offset, Math.min(end, offset + sliceSize));
      }
    },
  };
}

export const replicationBytes: ReplicationScenario = {
  id: "repl-bytes",
  figures: () => [
    {
      id: "repl-bytes",
      label: `Cross-region bytes / unique blob bytes, ${bytesImages} images sharing a layer, 2 repos x 2 tags`,
      unit: "ratio",
      better: "lower",
      meridianOnly: true,
    },
    {
      id: "repl-bytes-wire",
      label: "  same, counted on the WAN links (both directions, all traffic)",
      unit: "ratio",
      better: "lower",
      meridianOnly: true,
    },
  ],
  async run(context) {
    const base = new LargeBlobs(bytesBaseMiB * 1024 * 1024).variant(0);
    const tops = new LargeBlobs(bytesTopMiB * 1024 * 1024);
    const images = Array.from({ length: bytesImages }, (_, index) => {
      const layers = [base, tops.variant(index)];
      const { config, manifest } = imageOf(layers, {
        created: new Date().toISOString(),
        nonce: randomBytes(8).toString("hex"),
      });
      return { layers, config: smallSource(config), manifest };
    });
    const unique = new Map<string, number>();
    for (const image of images) {
      for (const blob of [image.config, ...image.layers]) unique.set(blob.digest, blob.size);
    }
    const uniqueBytes = [...unique.values()].reduce((sum, size) => sum + size, 0);
    await withCluster(
      context,
      { regions: [regionA, regionB], wan: { rttMs: 0 } },
      async (cluster) => {
        await measureGroup(context, cluster, ["repl-bytes", "repl-bytes-wire"], async () => {
          const pushTo = cluster.client(regionA, 2);
          const watch = cluster.client(regionB, 2);
          // Let the first feed exchanges of the fresh cluster pass before counting.
          await delay(500);
          const health = await healthProbe(cluster, [regionA, regionB]);
          const load = loadNote();
          const links = [
            cluster.cluster.link(regionA, regionB),
            cluster.cluster.link(regionB, regionA),
          ];
          const before = links.map((link) => link.stats());
          const receivedBefore = await cluster.metric(regionB, bytesReceivedMetric);
          const fetchedBefore = await cluster.metric(
            regionB,
            "meridian_replication_blobs_fetched_total",
          );
          const pushed: { repo: string; tag: string; digest: string }[] = [];
          let clientBytes = 0;
          for (const [index, image] of images.entries()) {
            for (const repo of bytesRepos) {
              for (const blob of [image.config, ...image.layers]) {
                clientBytes += await pushIfMissing(pushTo, repo, blob);
              }
              for (const tag of [`img${index}`, `img${index}-stable`]) {
                await pushTo.putManifest(repo, tag, image.manifest.data, ociManifestType);
                pushed.push({ repo, tag, digest: image.manifest.digest });
              }
            }
          }
          const poll = { pollers: 1, intervalMs: 10, timeoutMs: 60_000 };
          for (const { repo, tag, digest } of pushed) {
            await waitTagged(watch, repo, tag, digest, poll);
          }
          // Tags visible means their blobs are in B; wait for any transfer still running.
          const settleDeadline = performance.now() + 30_000;
          while (
            (await cluster.metric(regionB, "meridian_replication_pending_blobs")) > 0 &&
            performance.now() < settleDeadline
          ) {
            await delay(50);
          }
          await delay(500);
          const received = (await cluster.metric(regionB, bytesReceivedMetric)) - receivedBefore;
          const fetched =
            (await cluster.metric(regionB, "meridian_replication_blobs_fetched_total")) -
            fetchedBefore;
          const after = links.map((link) => link.stats());
          const wire = links.map((_, index) => {
            const b = before[index];
            const a = after[index];
            return a && b
              ? a.bytesForward - b.bytesForward + (a.bytesBackward - b.bytesBackward)
              : 0;
          });
          const wireTotal = wire.reduce((sum, value) => sum + value, 0);
          const warnings = await health();
          if (fetched !== unique.size) {
            warnings.push(
              `${regionB} fetched ${fetched} blobs (meridian_replication_blobs_fetched_total), expected ${unique.size} unique blobs`,
            );
          }
          context.log(
            `repl-bytes: ${(received / uniqueBytes).toFixed(3)} (metric), ${(wireTotal / uniqueBytes).toFixed(3)} (links)`,
          );
          context.report("repl-bytes", received / uniqueBytes, {
            warnings,
            notes: [
              `${bytesImages} images (a shared ${bytesBaseMiB} MiB base layer + a ${bytesTopMiB} MiB layer + config each) pushed to ${regionA} under ${bytesRepos.length} repositories x 2 tags: ${pushed.length} tags, ${(clientBytes / 1e6).toFixed(1)} MB uploaded by the client (blobs HEADed first), ${unique.size} unique blobs of ${(uniqueBytes / 1e6).toFixed(2)} MB`,
              `${regionB} ${bytesReceivedMetric} grew by ${received} bytes over ${fetched} blobs fetched`,
            ],
          });
          context.report("repl-bytes-wire", wireTotal / uniqueBytes, {
            notes: [
              `WAN link bytes (forward + backward): ${regionB}->${regionA} (${regionB} fetching and following ${regionA}) ${((wire[1] ?? 0) / 1e6).toFixed(3)} MB, ${regionA}->${regionB} ${((wire[0] ?? 0) / 1e6).toFixed(3)} MB, from the first push until ${regionB} had every tag`,
              load,
            ],
          });
        });
      },
    );
  },
};

// ---------------------------------------------------------------------------------------------
// 4. Idle cost of a replica following two peers

export const replicationIdle: ReplicationScenario = {
  id: "repl-idle",
  figures: (config) => [
    {
      id: "repl-idle-cpu",
      label: `Idle replica following 2 peers, CPU over ${config.replIdleSeconds} s`,
      unit: "% of a core",
      better: "lower",
      meridianOnly: true,
    },
    {
      id: "repl-idle-rss",
      label: "  and its RSS",
      unit: "MiB",
      better: "lower",
      meridianOnly: true,
    },
  ],
  async run(context) {
    const seconds = context.config.replIdleSeconds;
    const regions = [regionA, regionB, regionC];
    await withCluster(context, { regions }, async (cluster) => {
      await measureGroup(context, cluster, ["repl-idle-cpu", "repl-idle-rss"], async () => {
        const health = await healthProbe(cluster, regions);
        const load = loadNote();
        // One image pushed in each region, visible in every region: the replicas are in sync.
        const repo = "bench/repl-idle";
        const pushed: { tag: string; digest: string }[] = [];
        for (const region of regions) {
          const image = makeSmallImage();
          await cluster.client(region).pushImage(repo, image, region);
          pushed.push({ tag: region, digest: image.manifest.digest });
        }
        const poll = { pollers: 1, intervalMs: 10, timeoutMs: 30_000 };
        for (const region of regions) {
          for (const { tag, digest } of pushed) {
            await waitTagged(cluster.client(region), repo, tag, digest, poll);
          }
        }
        await delay(2000);
        const pids = Object.fromEntries(regions.map((region) => [region, cluster.pid(region)]));
        const cpuBefore = Object.fromEntries(
          regions.map((region) => [region, cpuSeconds(pids[region] ?? 0)]),
        );
        const rss: number[] = [];
        const started = performance.now();
        const end = started + seconds * 1000;
        while (performance.now() < end) {
          rss.push(rssMiB(pids[regionB] ?? 0));
          await delay(Math.min(250, Math.max(1, end - performance.now())));
        }
        const elapsed = (performance.now() - started) / 1000;
        const cpu = Object.fromEntries(
          regions.map((region) => [
            region,
            ((cpuSeconds(pids[region] ?? 0) - (cpuBefore[region] ?? 0)) / elapsed) * 100,
          ]),
        );
        const meanRss = rss.reduce((sum, value) => sum + value, 0) / rss.length;
        const warnings = await health();
        const cpuB = cpu[regionB] ?? Number.NaN;
        context.log(`repl-idle: ${cpuB.toFixed(2)}% of a core, ${meanRss.toFixed(0)} MiB`);
        context.report("repl-idle-cpu", cpuB, {
          warnings,
          notes: [
            `3 replicas (${regions.join(", ")}), direct links, after one image pushed in each region was visible everywhere and 2 s of quiet; ${regionB} measured (utime + stime from /proc over ${elapsed.toFixed(1)} s)`,
            `the other replicas: ${regionA} ${cpu[regionA]?.toFixed(2)}%, ${regionC} ${cpu[regionC]?.toFixed(2)}%; anti-entropy every 30 s, feed long-polls of 25 s`,
          ],
        });
        context.report("repl-idle-rss", meanRss, {
          notes: [
            `mean of ${rss.length} VmRSS samples of ${regionB} (min ${Math.min(...rss).toFixed(0)}, max ${Math.max(...rss).toFixed(0)} MiB)`,
            load,
          ],
        });
      });
    });
  },
};
