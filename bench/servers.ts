// Starts either registry behind one interface: URL, pid for /proc readings, version string,
// the tail of its output (to explain a crash), liveness, and disposal of process and data.
import { type ChildProcess, execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { rm } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { startMeridian } from "../test/support/meridian-process.ts";
import type { RegistryKind } from "./config.ts";
import { distributionBinary, startDistribution } from "./distribution-process.ts";

export interface RunningServer {
  readonly url: string;
  readonly pid: number;
  readonly version: string;
  /** Undefined while running; otherwise how the process ended and its last output. */
  exitReason(): string | undefined;
  dispose(): Promise<void>;
  /** Synchronous SIGKILL and folder removal, for process exit paths that cannot await. */
  killNow(): void;
}

function killNow(child: ChildProcess, dataDir: string): void {
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  rmSync(dataDir, { recursive: true, force: true });
}

const repoRoot = fileURLToPath(new URL("../", import.meta.url));
const stopGraceMs = 10_000;

/** "meridian <commit>[ + uncommitted src changes]", or Distribution's --version. */
export function versionOf(kind: RegistryKind): string {
  try {
    if (kind === "distribution") {
      return execFileSync(distributionBinary, ["--version"], { encoding: "utf8" }).trim();
    }
    const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], {
      cwd: repoRoot,
      encoding: "utf8",
    }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "src"], {
      cwd: repoRoot,
      encoding: "utf8",
    }).trim();
    return `meridian ${commit}${dirty ? " + uncommitted src changes" : ""}`;
  } catch {
    return "unknown";
  }
}

function watch(child: ChildProcess): () => string | undefined {
  let tail = "";
  const keep = (chunk: Buffer): void => {
    tail = (tail + chunk.toString()).slice(-4000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  return () => {
    if (child.exitCode === null && child.signalCode === null) return undefined;
    return `server exited (${child.exitCode ?? child.signalCode}); last output: ${tail.trim() || "(none)"}`;
  };
}

export async function startServer(kind: RegistryKind): Promise<RunningServer> {
  const version = versionOf(kind);
  if (kind === "distribution") {
    const server = await startDistribution();
    return {
      url: server.url,
      pid: server.child.pid ?? 0,
      version,
      exitReason: watch(server.child),
      dispose: () => server.dispose(),
      killNow: () => killNow(server.child, server.dataDir),
    };
  }
  // BENCH_MERIDIAN_WORKERS (default 1): Meridian's `--workers`, to compare 1 with auto.
  const workers = process.env.BENCH_MERIDIAN_WORKERS ?? "1";
  const server = await startMeridian({ timeoutMs: 60_000, args: ["--workers", workers] });
  return {
    url: server.url,
    pid: server.child.pid ?? 0,
    version,
    exitReason: watch(server.child),
    // A graceful stop can wait forever on a stuck request: SIGKILL after the grace period.
    async dispose() {
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), stopGraceMs);
      });
      const outcome = await Promise.race([server.stop().then(() => "stopped" as const), graceOver]);
      clearTimeout(timer);
      if (outcome === "timeout") await server.kill9();
      await rm(server.dataDir, { recursive: true, force: true });
    },
    killNow: () => killNow(server.child, server.dataDir),
  };
}
