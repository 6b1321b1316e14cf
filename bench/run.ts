// Entry point of `npm run bench`: generates the test data once, then starts each registry in
// turn (Distribution, then Meridian), runs every scenario against it with the same client code,
// stops it; then runs the replication and global endpoint scenarios (Meridian only, each on
// its own cluster), and finally prints the side-by-side table and writes .bench/results.json.
// Environment: see bench/config.ts (BENCH_BLOB_MIB, BENCH_ONLY, BENCH_SCENARIOS, ...).
import { cpus, loadavg } from "node:os";
import { isAbsolute, join } from "node:path";
import { fileURLToPath } from "node:url";
import { killAllClustersNow, stopAllClusters } from "./bench-cluster.ts";
import { LargeBlobs, makeSmallImage } from "./blob-data.ts";
import { type BenchConfig, loadConfig, type RegistryKind } from "./config.ts";
import {
  type BenchData,
  errorText,
  type FigureResult,
  type FigureSpec,
  type Scenario,
  type ScenarioContext,
} from "./figures.ts";
import { flushWriteback } from "./host.ts";
import { type RegistryRun, renderDetails, renderTable, writeResults } from "./report.ts";
import { replicationScenarios, scenarios } from "./scenarios.ts";
import type { ReplicationContext, ReplicationScenario } from "./scenarios-replication.ts";
import { type RunningServer, startServer, versionOf } from "./servers.ts";

const repoRoot = fileURLToPath(new URL("../", import.meta.url));
let activeServer: RunningServer | undefined;

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

function generateData(config: BenchConfig): BenchData {
  const started = Date.now();
  const blobs = new LargeBlobs(config.blobMiB * 1024 * 1024);
  const rssBlobs =
    config.rssBlobMiB === config.blobMiB ? blobs : new LargeBlobs(config.rssBlobMiB * 1024 * 1024);
  const smallImages = Array.from({ length: config.smallImages }, () => makeSmallImage());
  const sessionImages = Array.from({ length: config.smallImages }, () => makeSmallImage());
  log(`test data generated in ${Date.now() - started} ms`);
  return { blobs, rssBlobs, smallImages, sessionImages, fixture: makeSmallImage() };
}

/** The report/measure/log part of a scenario's context, writing into `figures`. */
function recorder(
  figures: Record<string, FigureResult>,
  kind: RegistryKind,
): Pick<ScenarioContext, "report" | "measure" | "log"> {
  return {
    report(figureId, value, details = {}) {
      figures[figureId] = {
        value,
        notes: [...(details.notes ?? [])],
        warnings: [...(details.warnings ?? [])],
        ...(details.samples ? { samples: [...details.samples] } : {}),
        ...(details.incomparable ? { incomparable: details.incomparable } : {}),
      };
    },
    async measure(figureId, work) {
      try {
        await work();
      } catch (error) {
        figures[figureId] = { error: errorText(error), notes: [], warnings: [] };
        log(`[${kind}] ${figureId} FAILED: ${errorText(error)}`);
      }
    },
    log: (message) => log(`[${kind}] ${message}`),
  };
}

/**
 * Runs a scenario after flushing writeback; an error (or `exitReason`, when the server died)
 * fails every figure of it not reported yet.
 */
async function runRecorded(
  id: string,
  kind: RegistryKind,
  specs: readonly { id: string }[],
  figures: Record<string, FigureResult>,
  run: () => Promise<void>,
  exitReason: () => string | undefined = () => undefined,
): Promise<void> {
  const flushMs = flushWriteback();
  log(`[${kind}] ${id}... (writeback flushed first in ${Math.round(flushMs)} ms)`);
  try {
    await run();
  } catch (error) {
    const reason = exitReason() ?? errorText(error);
    log(`[${kind}] ${id} FAILED: ${reason}`);
    for (const spec of specs) {
      if (!figures[spec.id]) figures[spec.id] = { error: reason, notes: [], warnings: [] };
    }
  }
}

async function runScenario(
  scenario: Scenario,
  server: RunningServer,
  kind: RegistryKind,
  config: BenchConfig,
  data: BenchData,
  figures: Record<string, FigureResult>,
): Promise<void> {
  const specs = scenario.figures(config);
  const exitBefore = server.exitReason();
  if (exitBefore !== undefined) {
    for (const spec of specs) figures[spec.id] = { error: exitBefore, notes: [], warnings: [] };
    return;
  }
  const context: ScenarioContext = {
    ...recorder(figures, kind),
    target: { kind, url: server.url, pid: server.pid },
    config,
    data,
  };
  await runRecorded(
    scenario.id,
    kind,
    specs,
    figures,
    () => scenario.run(context),
    () => server.exitReason(),
  );
}

/** Runs one replication scenario (it starts and stops its own cluster) into Meridian's figures. */
async function runReplicationScenario(
  scenario: ReplicationScenario,
  config: BenchConfig,
  figures: Record<string, FigureResult>,
): Promise<void> {
  const context: ReplicationContext = { ...recorder(figures, "meridian"), config };
  const started = Date.now();
  await runRecorded(scenario.id, "meridian", scenario.figures(config), figures, () =>
    scenario.run(context),
  );
  log(`[meridian] ${scenario.id} done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

async function benchRegistry(
  kind: RegistryKind,
  config: BenchConfig,
  selected: readonly Scenario[],
  data: BenchData,
): Promise<RegistryRun> {
  log(`[${kind}] starting`);
  let server: RunningServer;
  try {
    server = await startServer(kind);
  } catch (error) {
    const run: RegistryRun = { kind, version: "unknown", figures: {} };
    run.startError = errorText(error);
    for (const spec of selected.flatMap((scenario) => scenario.figures(config))) {
      run.figures[spec.id] = {
        error: `could not start: ${run.startError}`,
        notes: [],
        warnings: [],
      };
    }
    log(`[${kind}] could not start: ${run.startError}`);
    return run;
  }
  activeServer = server;
  log(`[${kind}] ${server.version} listening on ${server.url} (pid ${server.pid})`);
  const run: RegistryRun = { kind, version: server.version, figures: {} };
  try {
    for (const scenario of selected) {
      await runScenario(scenario, server, kind, config, data, run.figures);
    }
  } finally {
    activeServer = undefined;
    await server.dispose();
  }
  return run;
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const loadAtStart = loadavg()[0] ?? 0;
  const config = loadConfig();
  const wanted = (id: string): boolean =>
    config.scenarios.length === 0 || config.scenarios.includes(id);
  const selected = scenarios.filter((scenario) => wanted(scenario.id));
  const selectedReplication = replicationScenarios.filter((scenario) => wanted(scenario.id));
  if (selected.length === 0 && selectedReplication.length === 0) {
    const ids = [...scenarios, ...replicationScenarios].map((s) => s.id);
    throw new Error(`BENCH_SCENARIOS matches none of: ${ids.join(", ")}`);
  }
  const specs: FigureSpec[] = [
    ...selected.flatMap((scenario) => [...scenario.figures(config)]),
    ...selectedReplication.flatMap((scenario) => [...scenario.figures(config)]),
  ];
  const data = selected.length > 0 ? generateData(config) : undefined;
  const runs: RegistryRun[] = [];
  for (const kind of config.registries) {
    if (data) {
      runs.push(await benchRegistry(kind, config, selected, data));
    } else {
      // Replication figures only: no single registry to start.
      const version = kind === "meridian" ? versionOf(kind) : "not started (no figure needs it)";
      runs.push({ kind, version, figures: {} });
    }
  }
  const meridianRun = runs.find((run) => run.kind === "meridian");
  if (selectedReplication.length > 0 && !meridianRun) {
    log("replication figures skipped: they are Meridian's and BENCH_ONLY leaves Meridian out");
  }
  if (meridianRun) {
    for (const scenario of selectedReplication) {
      await runReplicationScenario(scenario, config, meridianRun.figures);
    }
  }
  const outFile = isAbsolute(config.outFile) ? config.outFile : join(repoRoot, config.outFile);
  await writeResults(outFile, config, specs, runs, startedAt, loadAtStart);
  const versions = runs.map((run) => `${run.kind}: ${run.version}`).join("; ");
  const busy =
    loadAtStart > 0.5
      ? ` Other processes were busy (load average ${loadAtStart.toFixed(2)} at start): expect noise.`
      : ` Load average at start ${loadAtStart.toFixed(2)}.`;
  process.stdout.write(
    [
      "",
      `Meridian benchmark, ${startedAt.toISOString()}, node ${process.version}, ${versions}`,
      `Blob ${config.blobMiB} MiB (median of ${config.repeat}), MB = 10^6 bytes; rates over ${config.rpsSeconds} s after ${config.warmupSeconds} s warm-up; ${cpus().length} CPUs.${busy}`,
      ...(selectedReplication.some((scenario) => scenario.id !== "global") && meridianRun
        ? [
            "Replication: Meridian replicas as separate processes on loopback, A = westus, B = eastus (C = westeurope), WAN emulator links in the bench process.",
          ]
        : []),
      ...(selectedReplication.some((scenario) => scenario.id === "global") && meridianRun
        ? [
            "Global endpoint: one replica (westus) as a separate process, proxy and redirect endpoints in the bench process's main thread, a third endpoint hosted in the replica's process, clients in worker threads; ratios endpoint/direct.",
          ]
        : []),
      "",
      renderTable(specs, runs),
      "",
      renderDetails(specs, runs),
      "",
      `Results written to ${outFile}`,
      "",
    ].join("\n"),
  );
}

// Last resort (uncaught error, process.exit): never leave a registry running behind us.
process.on("exit", () => {
  activeServer?.killNow();
  killAllClustersNow();
});

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping the registry under test`);
    const server = activeServer;
    void Promise.allSettled([
      server ? server.dispose() : Promise.resolve(),
      stopAllClusters(),
    ]).finally(() => process.exit(130));
  });
}

main().catch(async (error: unknown) => {
  log(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  await activeServer?.dispose();
  await stopAllClusters();
  process.exitCode = 1;
});
