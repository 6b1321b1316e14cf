// Starts a real Meridian replica as a child process on loopback for end-to-end tests and
// benchmarks, and waits (with a deadline) until it says where it listens.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const cliPath = fileURLToPath(new URL("../../src/cli/meridian.ts", import.meta.url));

export interface MeridianProcess {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  /** `127.0.0.1:41234`, the form skopeo's `docker://` references want. */
  readonly host: string;
  readonly dataDir: string;
  readonly child: ChildProcess;
  /** Graceful stop (SIGTERM), waits for the exit. */
  stop(): Promise<void>;
  /** SIGKILL, waits for the exit: simulates a crash. */
  kill9(): Promise<void>;
  /** Stops the process and removes its data folder. */
  dispose(): Promise<void>;
}

export interface StartOptions {
  /** Reuse a data folder (to restart after a crash); a fresh temp folder otherwise. */
  dataDir?: string;
  /** Extra CLI flags after `serve`. */
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Milliseconds to wait for the "listening" line. */
  timeoutMs?: number;
}

export async function startMeridian(options: StartOptions = {}): Promise<MeridianProcess> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), "meridian-test-")));
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      cliPath,
      "serve",
      "--listen",
      "127.0.0.1:0",
      "--data",
      dataDir,
      ...(options.args ?? []),
    ],
    {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, MERIDIAN_LOG_LEVEL: "warn", ...options.env },
    },
  );
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`meridian did not start in time\n${stderr}`)),
      options.timeoutMs ?? 20_000,
    );
    if (!child.stdout) throw new Error("child has no stdout");
    const lines = createInterface({ input: child.stdout });
    lines.on("line", (line) => {
      try {
        const record = JSON.parse(line) as { msg?: string; url?: string };
        if (record.msg === "listening" && record.url) {
          clearTimeout(timer);
          resolve(record.url);
        }
      } catch {
        // Not a JSON log line: ignore.
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`meridian exited with ${code} before listening\n${stderr}`));
    });
  });
  const signal = async (name: NodeJS.Signals): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(name);
    await exited;
  };
  return {
    url,
    host: new URL(url).host,
    dataDir,
    child,
    stop: () => signal("SIGTERM"),
    kill9: () => signal("SIGKILL"),
    dispose: async () => {
      await signal("SIGTERM");
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
