// Starts one replica as a child process (`meridian serve`) and waits, with a deadline,
// until it logs where it listens. Used by `meridian up` and by the end-to-end tests.
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { runtimeBundle } from "../../bin/runtime-bundle.mjs";

export interface ReplicaProcess {
  readonly url: string;
  readonly child: ChildProcess;
  /** The last lines the process wrote (stdout and stderr), for failure messages. */
  recentOutput(): string;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<void>;
  /** SIGKILL (a crash), then waits for the exit. */
  kill9(): Promise<void>;
}

export interface ReplicaProcessOptions {
  /** Arguments after `serve`. */
  args: string[];
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Called with every output line (after the process started), e.g. to forward logs. */
  onLine?: (line: string) => void;
}

const keptLines = 60;
/**
 * Node flags of every replica. A young generation of at most 1 MiB per semi-space (the
 * default grows to 16 MiB) collects the socket chunks of blob uploads sooner: the peak RSS
 * during 16 concurrent 256 MiB uploads dropped by 20-25 MiB, push throughput unchanged.
 * That was before request bodies' chunks were freed as they are copied
 * (storage/chunk-release.ts); the small young generation still serves the bodies that
 * are not (from peers and import sources), and costs the least memory itself.
 */
const nodeFlags = ["--max-semi-space-size=1"];

export async function startReplicaProcess(options: ReplicaProcessOptions): Promise<ReplicaProcess> {
  const child = spawn(
    process.execPath,
    // The bundle of src/, not the sources through a loader (see bin/runtime-bundle.mjs).
    [...nodeFlags, await runtimeBundle(), "serve", ...options.args],
    {
      stdio: ["ignore", "pipe", "pipe"],
      // A replica started here ends with this process, however this process ends.
      env: { ...process.env, MERIDIAN_EXIT_WITH_PARENT: "1", ...options.env },
    },
  );
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const recent: string[] = [];
  const keep = (line: string) => {
    recent.push(line);
    if (recent.length > keptLines) recent.shift();
    options.onLine?.(line);
  };
  if (child.stderr) createInterface({ input: child.stderr }).on("line", keep);
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      // A replica that never announced itself must not keep running unowned.
      child.kill("SIGKILL");
      reject(new Error(`replica did not start in time\n${recent.join("\n")}`));
    }, options.timeoutMs ?? 30_000);
    if (!child.stdout) throw new Error("child has no stdout");
    createInterface({ input: child.stdout }).on("line", (line) => {
      keep(line);
      if (!line.includes('"listening"')) return;
      try {
        const record = JSON.parse(line) as { msg?: string; url?: string };
        if (record.msg === "listening" && record.url) {
          clearTimeout(timer);
          resolve(record.url);
        }
      } catch {
        // Not a JSON log line.
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`replica exited with ${code} before listening\n${recent.join("\n")}`));
    });
  });
  const signal = async (name: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(name);
    await exited;
  };
  return {
    url,
    child,
    recentOutput: () => recent.join("\n"),
    stop: () => signal("SIGTERM"),
    kill9: () => signal("SIGKILL"),
  };
}
