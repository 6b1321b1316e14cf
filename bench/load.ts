// The bench's load generators. Request rates: autocannon with `concurrency` keep-alive
// connections, run in the client worker thread (client-thread.ts) so that the load has its
// own event loop and its busyness can be reported (near 1: the client, not the server, may
// be the limit). Multi-request operations (an image push, a tag push): a fixed-concurrency
// pool of tasks in the main thread.
import { performance } from "node:perf_hooks";
import autocannon from "autocannon";
import { ownThreadCpuSeconds } from "./host.ts";

export interface LoadSpec {
  readonly origin: string;
  readonly method: "GET" | "HEAD" | "POST";
  /** Request path; every `{i}` becomes an id unique to each request of the run. */
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
  /** CPU time of the load-generating thread during the measurement, per request answered. */
  readonly clientCpuMicros: number;
}

const requestTimeoutSeconds = 30;
/** The `{i}` of the next templated request (warm-up and measurement never repeat one). */
let nextId = 0;

/** autocannon.aggregateResult, which its type definitions leave out. */
interface Aggregator {
  aggregateResult(results: readonly unknown[], options: autocannon.Options): autocannon.Result;
}

/**
 * autocannon's response parser does not know the request's method, so after a HEAD it waits
 * for the body its Content-Length announces (until the timeout). Its headers-complete
 * handler is set after `setupClient` runs: wrap whatever is set so that it answers "no
 * body", as node:http does for HEAD.
 */
function skipResponseBodies(client: autocannon.Client): void {
  const parser = (client as unknown as { parser: { constructor: { kOnHeadersComplete: number } } })
    .parser;
  let handler: (...args: unknown[]) => unknown = () => undefined;
  Object.defineProperty(parser, parser.constructor.kOnHeadersComplete, {
    get:
      () =>
      (...args: unknown[]) => {
        handler(...args);
        return true;
      },
    set: (next: (...args: unknown[]) => unknown) => {
      handler = next;
    },
  });
}

/** One autocannon run of `durationMs` (or `maxRequests`), counting answers by status. */
async function cannon(
  spec: LoadSpec,
  durationMs: number,
): Promise<Omit<LoadResult, "perSecond" | "clientUtilization" | "clientCpuMicros">> {
  let ok = 0;
  let errors = 0;
  let firstError: string | undefined;
  const templated = spec.path.includes("{i}");
  const options: autocannon.Options = {
    url: `${spec.origin}${spec.path}`,
    method: spec.method,
    headers: { ...spec.headers },
    connections: spec.concurrency,
    duration: durationMs / 1000,
    maxOverallRequests: spec.maxRequests,
    timeout: requestTimeoutSeconds,
    ...(spec.method === "HEAD" ? { setupClient: skipResponseBodies } : {}),
    requests: [
      {
        // autocannon's own [<id>] has upper case, which repository names do not allow.
        ...(templated
          ? {
              setupRequest: (request) => ({
                ...request,
                path: spec.path.replaceAll("{i}", String(nextId++)),
              }),
            }
          : {}),
        onResponse: (status, body) => {
          if (spec.expectStatus.includes(status)) {
            ok += 1;
            return;
          }
          errors += 1;
          firstError ??= `${spec.method} ${spec.path} -> HTTP ${status} (expected ${spec.expectStatus.join("/")}): ${body.replace(/\s+/g, " ").trim().slice(0, 500)}`;
        },
      },
    ],
  };
  const start = performance.now();
  const raw = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(options, (error, result) =>
      error ? reject(error) : resolve(result),
    );
    instance.on("reqError", (error) => {
      firstError ??= `${spec.method} ${spec.path} -> ${error.message}`;
    });
  });
  const elapsedMs = performance.now() - start;
  // Off the main thread autocannon hands back its raw histograms.
  const result = (autocannon as unknown as Aggregator).aggregateResult([raw], options);
  return {
    ok,
    errors: errors + result.errors,
    ...(firstError !== undefined ? { firstError } : {}),
    elapsedMs,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
  };
}

/** Runs the load in the calling thread (the client worker: see client-thread.ts). */
export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  if (spec.warmupMs > 0) await cannon(spec, spec.warmupMs);
  const utilizationStart = performance.eventLoopUtilization();
  const cpuStart = ownThreadCpuSeconds();
  const measured = await cannon(spec, spec.durationMs);
  const answered = measured.ok + measured.errors;
  if (answered === 0) {
    // autocannon drops what is still in flight at the end: a server that never answers
    // would otherwise read as 0/s without a failure.
    throw new Error(
      `${spec.method} ${spec.origin}${spec.path} -> no answer in ${spec.durationMs / 1000} s on ${spec.concurrency} connections`,
    );
  }
  return {
    ...measured,
    perSecond: measured.ok / (measured.elapsedMs / 1000),
    clientUtilization: performance.eventLoopUtilization(utilizationStart).utilization,
    clientCpuMicros: ((ownThreadCpuSeconds() - cpuStart) * 1e6) / Math.max(1, answered),
  };
}

export interface PoolResult {
  readonly ok: number;
  readonly failed: number;
  readonly firstError?: string;
  readonly elapsedMs: number;
  /** ok / elapsed seconds. */
  readonly perSecond: number;
  /** Event-loop utilisation of the main thread while the pool ran (0..1). */
  readonly clientUtilization: number;
}

export interface PoolOptions {
  readonly concurrency: number;
  readonly total: number;
  /** No task starts after this many milliseconds. */
  readonly durationMs: number;
  /** Stop starting tasks after this many failures. */
  readonly maxFailures?: number;
}

/**
 * Runs task(0), task(1), ... with at most `concurrency` in flight until `total` tasks are
 * started or the time budget ends, counting successes and failures.
 */
export async function runPool(
  options: PoolOptions,
  task: (index: number) => Promise<void>,
): Promise<PoolResult> {
  const utilizationStart = performance.eventLoopUtilization();
  const start = performance.now();
  const deadline = start + options.durationMs;
  const maxFailures = options.maxFailures ?? Number.POSITIVE_INFINITY;
  let next = 0;
  let ok = 0;
  let failed = 0;
  let firstError: string | undefined;
  const lane = async (): Promise<void> => {
    while (next < options.total && performance.now() < deadline && failed < maxFailures) {
      const index = next++;
      try {
        await task(index);
        ok += 1;
      } catch (error) {
        failed += 1;
        firstError ??= error instanceof Error ? error.message : String(error);
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, lane));
  const elapsedMs = performance.now() - start;
  return {
    ok,
    failed,
    ...(firstError !== undefined ? { firstError } : {}),
    elapsedMs,
    perSecond: ok / (elapsedMs / 1000),
    clientUtilization: performance.eventLoopUtilization(utilizationStart).utilization,
  };
}
