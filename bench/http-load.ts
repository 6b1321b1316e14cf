// Fixed-concurrency request loop measuring requests/s: `concurrency` keep-alive connections
// (lean-http.ts) send one request after another until the duration or the request budget is
// used up. Runs in a worker thread so that the load generator's own event-loop utilisation
// can be reported (a value near 1 means the client, not the server, is the limit).
import { performance } from "node:perf_hooks";
import { Worker } from "node:worker_threads";
import { LeanConnection, serializeRequest } from "./lean-http.ts";

export interface LoadSpec {
  readonly origin: string;
  readonly method: "GET" | "HEAD" | "POST";
  /** Request path; every `{i}` becomes a counter unique to each request of the run. */
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly expectStatus: readonly number[];
  readonly concurrency: number;
  readonly durationMs: number;
  readonly maxRequests: number;
  /** Unmeasured run before the measurement (JIT, connection set-up). */
  readonly warmupMs: number;
}

export interface LoadResult {
  /** Requests answered with an expected status during the measurement. */
  readonly ok: number;
  readonly errors: number;
  /** The first failed exchange, request and response. */
  readonly firstError?: string;
  readonly elapsedMs: number;
  /** ok / elapsed. */
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Event-loop utilisation of the load-generating thread during the measurement (0..1). */
  readonly clientUtilization: number;
}

const requestTimeoutMs = 30_000;

interface Outcome {
  readonly ok: boolean;
  readonly description?: string;
}

async function once(
  connection: LeanConnection,
  spec: LoadSpec,
  path: string,
  raw: Buffer,
): Promise<Outcome> {
  try {
    const response = await connection.request(spec.method, raw, true);
    if (spec.expectStatus.includes(response.status)) return { ok: true };
    return {
      ok: false,
      description: `${spec.method} ${path} -> HTTP ${response.status} (expected ${spec.expectStatus.join("/")}): ${response.body.replace(/\s+/g, " ").trim().slice(0, 500)}`,
    };
  } catch (error) {
    return { ok: false, description: `${spec.method} ${path} -> ${(error as Error).message}` };
  }
}

function percentile(sorted: Float64Array, fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.floor(fraction * sorted.length));
  return sorted[index] ?? Number.NaN;
}

/** Runs the load in the calling thread. */
export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const origin = new URL(spec.origin);
  const connections = Array.from(
    { length: spec.concurrency },
    () => new LeanConnection(origin, requestTimeoutMs),
  );
  const templated = spec.path.includes("{i}");
  const fixed = serializeRequest(spec.method, spec.path, origin.host, spec.headers);
  let counter = 0;
  const phase = async (durationMs: number, maxRequests: number, record: boolean) => {
    const latencies: number[] = [];
    let ok = 0;
    let errors = 0;
    let firstError: string | undefined;
    let started = 0;
    const start = performance.now();
    const deadline = start + durationMs;
    const loop = async (connection: LeanConnection): Promise<void> => {
      while (started < maxRequests && performance.now() < deadline) {
        started += 1;
        const path = templated ? spec.path.replaceAll("{i}", String(counter++)) : spec.path;
        const raw = templated
          ? serializeRequest(spec.method, path, origin.host, spec.headers)
          : fixed;
        const sent = performance.now();
        const outcome = await once(connection, spec, path, raw);
        if (outcome.ok) {
          ok += 1;
          if (record) latencies.push(performance.now() - sent);
        } else {
          errors += 1;
          firstError ??= outcome.description;
        }
      }
    };
    await Promise.all(connections.map(loop));
    return { ok, errors, firstError, latencies, elapsedMs: performance.now() - start };
  };
  try {
    if (spec.warmupMs > 0) await phase(spec.warmupMs, spec.maxRequests, false);
    const utilizationStart = performance.eventLoopUtilization();
    const measured = await phase(spec.durationMs, spec.maxRequests, true);
    const utilization = performance.eventLoopUtilization(utilizationStart).utilization;
    const sorted = Float64Array.from(measured.latencies).sort();
    return {
      ok: measured.ok,
      errors: measured.errors,
      ...(measured.firstError !== undefined ? { firstError: measured.firstError } : {}),
      elapsedMs: measured.elapsedMs,
      perSecond: measured.ok / (measured.elapsedMs / 1000),
      p50Ms: percentile(sorted, 0.5),
      p99Ms: percentile(sorted, 0.99),
      clientUtilization: utilization,
    };
  } finally {
    for (const connection of connections) connection.close();
  }
}

/** Runs the load in a worker thread (bench/http-load-worker.ts). */
export function runLoadInWorker(spec: LoadSpec): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    // Loader hooks registered by `--import tsx` do not reach worker threads on Node 20:
    // the worker registers tsx itself, then loads the TypeScript entry.
    const tsxApi = import.meta.resolve("tsx/esm/api");
    const entry = new URL("./http-load-worker.ts", import.meta.url).href;
    const bootstrap = `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); });`;
    const worker = new Worker(bootstrap, { eval: true, workerData: spec });
    let result: LoadResult | undefined;
    worker.once("message", (message: LoadResult) => {
      result = message;
    });
    worker.once("error", reject);
    worker.once("exit", (code) => {
      if (result) resolve(result);
      else reject(new Error(`load worker exited with code ${code} without a result`));
    });
  });
}
