// Fixed-concurrency pool for multi-request operations run from the main thread (an image push,
// a tag push): runs task(0), task(1), ... with at most `concurrency` in flight until `total`
// tasks are started or the time budget ends, counting successes and failures.
import { performance } from "node:perf_hooks";

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
