// `meridian gc` and `meridian storage`, through the admin API of a running registry. The
// replica asked runs the pass (or measures) itself and asks every other region's replica
// for theirs, so one command covers every region; `--region` picks one.
import type { Command } from "commander";
import type { GcReport } from "../gc/garbage-collector.ts";
import type { RegionStorage } from "../gc/gc-service.ts";
import { AdminClient } from "./admin-client.ts";

type Answer<T> = ({ region: string } & T) | { region: string; error: string };

/** A pass over a large store takes a while. */
const passTimeoutMs = 30 * 60_000;

export function registerGcCommands(program: Command): void {
  program
    .command("gc")
    .description(
      "collect garbage now in every region: expired untagged manifests, links no manifest uses, unreferenced blob bytes",
    )
    .option("--dry-run", "print what would go (counts and bytes per repository), delete nothing")
    .option("--grace-seconds <n>", "override gc.graceSeconds for this pass", nonNegative)
    .option("--region <region>", "only this region")
    .option("--registry <endpoint>", "the registry's admin API (default: meridian login's)")
    .option("-o, --output <format>", "table or json", "table")
    .action(async (flags: GcFlags) => {
      format(flags.output);
      const client = await AdminClient.resolve(flags.registry);
      const body = {
        dryRun: flags.dryRun ?? false,
        graceSeconds: flags.graceSeconds,
        region: flags.region,
      };
      const answer = (await client.request("POST", "gc", body, passTimeoutMs)) as {
        regions: Answer<GcReport>[];
      };
      if (flags.output === "json") return printJson(answer);
      printPasses(answer.regions);
      if (answer.regions.some((r) => "error" in r)) process.exitCode = 1;
    });
  program
    .command("storage")
    .description("storage used per region and per repository")
    .option("--region <region>", "only this region")
    .option("--registry <endpoint>", "the registry's admin API (default: meridian login's)")
    .option("-o, --output <format>", "table or json", "table")
    .action(async (flags: { region?: string; registry?: string; output: string }) => {
      format(flags.output);
      const client = await AdminClient.resolve(flags.registry);
      const query = flags.region ? `?region=${encodeURIComponent(flags.region)}` : "";
      const answer = (await client.request("GET", `storage${query}`, undefined, passTimeoutMs)) as {
        regions: Answer<RegionStorage>[];
      };
      if (flags.output === "json") return printJson(answer);
      const rows: string[][] = [["REGION", "REPOSITORY", "BLOBS", "BYTES", "MANIFESTS"]];
      for (const region of answer.regions) {
        if ("error" in region) {
          rows.push([region.region, `unreachable: ${region.error}`, "", "", ""]);
          continue;
        }
        rows.push([region.region, "(blob store)", String(region.blobs), size(region.bytes), ""]);
        for (const r of region.repositories) {
          rows.push([
            region.region,
            r.repository,
            String(r.links),
            size(r.linkedBytes + r.manifestBytes),
            String(r.manifests),
          ]);
        }
      }
      table(rows);
      if (answer.regions.some((r) => "error" in r)) process.exitCode = 1;
    });
}

interface GcFlags {
  dryRun?: boolean;
  graceSeconds?: number;
  region?: string;
  registry?: string;
  output: string;
}

function printPasses(regions: Answer<GcReport>[]): void {
  const rows: string[][] = [["REGION", "REPOSITORY", "MANIFESTS", "LINKS", "BLOBS", "BYTES"]];
  for (const region of regions) {
    if ("error" in region) {
      rows.push([region.region, `unreachable: ${region.error}`, "", "", "", ""]);
      continue;
    }
    for (const r of region.repositories) {
      rows.push([
        region.region,
        r.repository,
        String(r.manifests),
        String(r.links),
        "",
        size(r.manifestBytes + r.linkBytes),
      ]);
    }
    rows.push([
      region.region,
      "(blob store)",
      "",
      "",
      String(region.blobs.count),
      size(region.blobs.bytes),
    ]);
  }
  const dry = regions.some((r) => !("error" in r) && r.dryRun);
  process.stdout.write(dry ? "would remove (dry run):\n" : "removed:\n");
  table(rows);
  for (const region of regions) {
    if ("error" in region) continue;
    const skipped = region.skipped > 0 ? `, ${region.skipped} skipped (in use)` : "";
    process.stdout.write(
      `${region.region}: ${region.storage.blobs} blobs, ${size(region.storage.bytes)} stored${dry ? " after the pass" : ""}${skipped}\n`,
    );
  }
}

function table(rows: string[][]): void {
  const widths = (rows[0] ?? []).map((_, i) =>
    Math.max(...rows.map((row) => (row[i] ?? "").length)),
  );
  for (const row of rows) {
    process.stdout.write(
      `${row
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join("  ")
        .trimEnd()}\n`,
    );
  }
}

function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function format(output: string): void {
  if (output !== "table" && output !== "json") {
    throw new Error(`unknown output format ${output}: table or json`);
  }
}

/** Bytes as people read them: 1.5 MiB. */
export function size(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

function nonNegative(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) {
    throw new Error(`--grace-seconds wants a whole number of seconds, not ${value}`);
  }
  return n;
}
