// Benchmark settings: every size, duration and concurrency of the run, read once from
// BENCH_* environment variables with the documented defaults.

export type RegistryKind = "distribution" | "meridian";

export interface BenchConfig {
  /** Size of the large blob (figures 1-3 and 9), in MiB. */
  readonly blobMiB: number;
  /** PATCH size of the chunked upload, in MiB. */
  readonly chunkMiB: number;
  /** Repetitions of each large-blob push/pull measurement (the median is reported). */
  readonly repeat: number;
  readonly smallImages: number;
  readonly smallSeconds: number;
  readonly smallConcurrency: number;
  readonly rpsSeconds: number;
  readonly rpsConcurrency: number;
  readonly warmupSeconds: number;
  readonly tags: number;
  readonly tagsPage: number;
  readonly listSeconds: number;
  readonly mounts: number;
  readonly mountSeconds: number;
  readonly mountConcurrency: number;
  readonly rssUploads: number;
  readonly rssBlobMiB: number;
  /** Size of the image of the replication throughput figure, in MiB (4 layers). */
  readonly replImageMiB: number;
  /** Emulated link rate of the replication throughput figure, MB/s (10^6 bytes). */
  readonly replLinkMBps: number;
  /** Small images pushed (one after another) for each replication lag figure. */
  readonly replLagImages: number;
  /** How long the idle replica is watched. */
  readonly replIdleSeconds: number;
  /** Registries to measure, in order. */
  readonly registries: readonly RegistryKind[];
  /** Scenario ids to run; empty means all. */
  readonly scenarios: readonly string[];
  readonly outFile: string;
}

function intFromEnv(name: string, fallback: number, min = 1): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
    throw new Error(`${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function listFromEnv(name: string): string[] {
  return (process.env[name] ?? "")
    .split(",")
    .map((part) => part.trim().toLowerCase())
    .filter((part) => part !== "");
}

function registriesFromEnv(): RegistryKind[] {
  const only = listFromEnv("BENCH_ONLY");
  if (only.length === 0) return ["distribution", "meridian"];
  for (const name of only) {
    if (name !== "distribution" && name !== "meridian") {
      throw new Error(`BENCH_ONLY accepts distribution and/or meridian, got ${name}`);
    }
  }
  return only as RegistryKind[];
}

export function loadConfig(): BenchConfig {
  const blobMiB = intFromEnv("BENCH_BLOB_MIB", 256);
  return {
    blobMiB,
    chunkMiB: intFromEnv("BENCH_CHUNK_MIB", 16),
    repeat: intFromEnv("BENCH_REPEAT", 3),
    smallImages: intFromEnv("BENCH_SMALL_IMAGES", 3000),
    smallSeconds: intFromEnv("BENCH_SMALL_SECONDS", 10),
    smallConcurrency: intFromEnv("BENCH_SMALL_CONCURRENCY", 8),
    rpsSeconds: intFromEnv("BENCH_RPS_SECONDS", 5),
    rpsConcurrency: intFromEnv("BENCH_RPS_CONCURRENCY", 32),
    warmupSeconds: intFromEnv("BENCH_WARMUP_SECONDS", 1, 0),
    tags: intFromEnv("BENCH_TAGS", 3000),
    tagsPage: intFromEnv("BENCH_TAGS_PAGE", 100),
    listSeconds: intFromEnv("BENCH_LIST_SECONDS", 3),
    mounts: intFromEnv("BENCH_MOUNTS", 20_000),
    mountSeconds: intFromEnv("BENCH_MOUNT_SECONDS", 5),
    mountConcurrency: intFromEnv("BENCH_MOUNT_CONCURRENCY", 8),
    rssUploads: intFromEnv("BENCH_RSS_UPLOADS", 16),
    rssBlobMiB: intFromEnv("BENCH_RSS_BLOB_MIB", blobMiB),
    replImageMiB: intFromEnv("BENCH_REPL_IMAGE_MIB", 1024),
    replLinkMBps: intFromEnv("BENCH_REPL_LINK_MBPS", 100),
    replLagImages: intFromEnv("BENCH_REPL_LAG_IMAGES", 100),
    replIdleSeconds: intFromEnv("BENCH_REPL_IDLE_SECONDS", 10),
    registries: registriesFromEnv(),
    scenarios: listFromEnv("BENCH_SCENARIOS"),
    outFile: process.env.BENCH_OUT ?? ".bench/results.json",
  };
}
