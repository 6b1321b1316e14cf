// Presentation of the results: the side-by-side table with Meridian/Distribution ratios, the
// notes and problems under it, and the JSON file written to .bench/.
import { mkdir, writeFile } from "node:fs/promises";
import { cpus } from "node:os";
import { dirname } from "node:path";
import type { BenchConfig, RegistryKind } from "./config.ts";
import type { FigureResult, FigureSpec } from "./figures.ts";

export interface RegistryRun {
  readonly kind: RegistryKind;
  readonly version: string;
  /** Set when the server could not be started at all. */
  startError?: string;
  readonly figures: Record<string, FigureResult>;
}

/** A figure only Meridian has (replication, global endpoint): Distribution's cell reads "n/a", no ratio. */
export interface MeridianOnlySpec extends FigureSpec {
  readonly meridianOnly: true;
}

function isMeridianOnly(spec: FigureSpec): spec is MeridianOnlySpec {
  return (spec as Partial<MeridianOnlySpec>).meridianOnly === true;
}

const names: Record<RegistryKind, string> = {
  distribution: "Distribution",
  meridian: "Meridian",
};

function formatValue(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : 2;
  return value.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** Why the two registries' values for a figure cannot be compared, if they cannot. */
function incomparability(spec: FigureSpec, runs: readonly RegistryRun[]): string | undefined {
  const reasons = runs.flatMap((run) => run.figures[spec.id]?.incomparable ?? []);
  return reasons.length > 0 ? reasons.join("; ") : undefined;
}

/** >1 means Meridian is better, whichever direction the figure goes. */
export function ratio(spec: FigureSpec, runs: readonly RegistryRun[]): number | undefined {
  if (isMeridianOnly(spec) || incomparability(spec, runs) !== undefined) return undefined;
  const meridian = runs.find((run) => run.kind === "meridian")?.figures[spec.id]?.value;
  const distribution = runs.find((run) => run.kind === "distribution")?.figures[spec.id]?.value;
  if (meridian === undefined || distribution === undefined) return undefined;
  if (meridian <= 0 || distribution <= 0) return undefined;
  return spec.better === "higher" ? meridian / distribution : distribution / meridian;
}

function cell(run: RegistryRun, spec: FigureSpec): string {
  if (run.kind !== "meridian" && isMeridianOnly(spec)) return "n/a";
  const figure = run.figures[spec.id];
  if (!figure) return "-";
  if (figure.value === undefined) return "FAILED";
  return `${formatValue(figure.value)}${figure.warnings.length > 0 ? " !" : ""}`;
}

export function renderTable(specs: readonly FigureSpec[], runs: readonly RegistryRun[]): string {
  const header = ["Figure", "Unit", ...runs.map((run) => names[run.kind])];
  const showRatio = runs.length === 2;
  if (showRatio) header.push("Meridian vs Distribution");
  const rows = specs.map((spec) => {
    const row = [
      spec.label,
      `${spec.unit} (${spec.better === "higher" ? "higher" : "lower"} better)`,
    ];
    for (const run of runs) row.push(cell(run, spec));
    if (showRatio) {
      const value = ratio(spec, runs);
      row.push(
        isMeridianOnly(spec)
          ? ""
          : incomparability(spec, runs) !== undefined
            ? "n/a *"
            : value === undefined
              ? "-"
              : `${value.toFixed(2)}x`,
      );
    }
    return row;
  });
  const widths = header.map((_, column) =>
    Math.max(...[header, ...rows].map((row) => (row[column] ?? "").length)),
  );
  const line = (row: readonly string[]): string =>
    row
      .map((text, column) =>
        column < 2 ? text.padEnd(widths[column] ?? 0) : text.padStart(widths[column] ?? 0),
      )
      .join("  ")
      .trimEnd();
  const rule = widths.map((width) => "-".repeat(width)).join("  ");
  const out = [line(header), rule, ...rows.map(line), rule];
  if (showRatio) {
    out.push(
      "Meridian vs Distribution: >1.00x means Meridian is better. Higher-is-better figures show",
      "Meridian/Distribution; lower-is-better figures (ms, MiB) show Distribution/Meridian.",
    );
  }
  if (showRatio && specs.some(isMeridianOnly)) {
    out.push(
      "n/a: Distribution has no replication or global endpoint; those figures are Meridian's alone.",
    );
  }
  out.push('"!" = the figure was measured but problems were seen (listed below).');
  for (const spec of specs) {
    const reason = incomparability(spec, runs);
    if (reason !== undefined) out.push(`* ${spec.label.trim()}: not comparable, ${reason}.`);
  }
  return out.join("\n");
}

export function renderDetails(specs: readonly FigureSpec[], runs: readonly RegistryRun[]): string {
  const notes: string[] = [];
  const problems: string[] = [];
  for (const run of runs) {
    if (run.startError) problems.push(`[${names[run.kind]}] could not start: ${run.startError}`);
    for (const spec of specs) {
      const figure = run.figures[spec.id];
      if (!figure) continue;
      const prefix = `[${names[run.kind]}] ${spec.label.trim()}`;
      if (figure.notes.length > 0) notes.push(`${prefix}: ${figure.notes.join("; ")}`);
      if (figure.error !== undefined) problems.push(`${prefix}: FAILED: ${figure.error}`);
      for (const warning of figure.warnings) problems.push(`${prefix}: ${warning}`);
    }
  }
  const out = ["Notes:", ...notes.map((note) => `  ${note}`)];
  out.push(problems.length > 0 ? "Problems:" : "Problems: none");
  out.push(...problems.map((problem) => `  ${problem}`));
  return out.join("\n");
}

export async function writeResults(
  path: string,
  config: BenchConfig,
  specs: readonly FigureSpec[],
  runs: readonly RegistryRun[],
  startedAt: Date,
  loadAverageAtStart: number,
): Promise<void> {
  const payload = {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    loadAverageAtStart,
    config,
    registries: Object.fromEntries(
      runs.map((run) => [
        run.kind,
        { version: run.version, ...(run.startError ? { startError: run.startError } : {}) },
      ]),
    ),
    figures: specs.map((spec) => ({
      ...spec,
      ratioMeridianBetterAbove1: ratio(spec, runs) ?? null,
      results: Object.fromEntries(runs.map((run) => [run.kind, run.figures[spec.id] ?? null])),
    })),
  };
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${JSON.stringify(payload, null, 2)}\n`);
}
