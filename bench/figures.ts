// Shared vocabulary of the benchmark: the measured figures, the registry under test, the
// data generated for the run, the scenario contract, and the statistics and wording every
// figure's value and notes are made of.
import type { BlobSource, LargeBlobs, SmallImage } from "./blob-data.ts";
import type { BenchConfig, RegistryKind } from "./config.ts";

export interface FigureSpec {
  readonly id: string;
  readonly label: string;
  readonly unit: string;
  readonly better: "higher" | "lower";
}

export interface FigureResult {
  /** Absent when the figure could not be measured (then `error` says why). */
  value?: number;
  error?: string;
  /** Context printed under the table: server CPU, latency percentiles, client load. */
  notes: string[];
  /** Problems seen while measuring (failed requests, wrong answers). */
  warnings: string[];
  samples?: number[];
  /** Set when this registry measured something different (then no ratio is printed). */
  incomparable?: string;
}

export interface Target {
  readonly kind: RegistryKind;
  readonly url: string;
  /** Pid of the server process, for /proc readings. */
  readonly pid: number;
}

export interface BenchData {
  readonly blobs: LargeBlobs;
  readonly rssBlobs: LargeBlobs;
  /** Images pushed by the small-image scenario. */
  readonly smallImages: readonly SmallImage[];
  /** Other images (no blob already stored) for the push through upload sessions. */
  readonly sessionImages: readonly SmallImage[];
  /** The image behind the manifest GET, blob HEAD, tag-list and mount scenarios. */
  readonly fixture: SmallImage;
}

export interface ReportDetails {
  readonly notes?: readonly string[];
  readonly warnings?: readonly string[];
  readonly samples?: readonly number[];
  readonly incomparable?: string;
}

export interface ScenarioContext {
  readonly target: Target;
  readonly config: BenchConfig;
  readonly data: BenchData;
  report(figureId: string, value: number, details?: ReportDetails): void;
  /** Runs one figure's measurement; an error fails that figure only. */
  measure(figureId: string, work: () => Promise<void>): Promise<void>;
  log(message: string): void;
}

export interface Scenario {
  readonly id: string;
  /** The figures it measures (labels may mention configured sizes). */
  figures(config: BenchConfig): readonly FigureSpec[];
  /** An error thrown here fails every figure of the scenario not reported yet. */
  run(context: ScenarioContext): Promise<void>;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/** Nearest-rank percentile. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? 0;
}

export function mean(values: readonly number[]): number {
  return values.reduce((sum, value) => sum + value, 0) / values.length;
}

export function megabytesPerSecond(bytes: number, milliseconds: number): number {
  return bytes / 1e6 / (milliseconds / 1000);
}

export function mib(bytes: number): number {
  return bytes / (1024 * 1024);
}

export function describeBlob(blob: BlobSource): string {
  return `${mib(blob.size)} MiB ${blob.digest.slice(0, 19)}...`;
}

/** Share of failed requests above which a rate is not reported at all. */
const maxErrorShare = 0.01;

/**
 * Turns a count of successes/failures into a reportable rate: throws when nothing succeeded or
 * more than 1% failed, returns warnings describing the failures otherwise.
 */
export function checkErrors(
  what: string,
  ok: number,
  failed: number,
  firstError: string | undefined,
): string[] {
  if (failed === 0) return [];
  const summary = `${failed} of ${ok + failed} ${what} failed; first: ${firstError ?? "?"}`;
  if (ok === 0 || failed / (ok + failed) > maxErrorShare) throw new Error(summary);
  return [summary];
}

export function percent(value: number): string {
  return `${Math.round(value)}%`;
}

/** "CPU (% of one core): server 93%, client 40%". */
export function cpuNote(serverPercent: number, clientPercent: number): string {
  return `CPU (% of one core): server ${percent(serverPercent)}, client ${percent(clientPercent)}`;
}

/** A load generator busier than this may be what limits the measured rate. */
const clientBoundUtilization = 0.9;

/** The client-bound warning, when the client thread's event loop was that busy. */
export function clientBoundWarning(utilization: number, what = ""): string[] {
  return utilization > clientBoundUtilization
    ? [
        `load generator busy ${percent(utilization * 100)}${what ? ` (${what})` : ""}: the figure may be client-bound`,
      ]
    : [];
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
