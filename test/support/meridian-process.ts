// Starts a real Meridian replica as a child process on loopback for end-to-end tests and
// benchmarks, with its own temp data folder.
import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startReplicaProcess } from "../../src/cluster/replica-process.ts";

export interface MeridianProcess {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  /** `127.0.0.1:41234`, the form skopeo's `docker://` references want. */
  readonly host: string;
  readonly dataDir: string;
  readonly child: ChildProcess;
  /** The process's last output lines, for failure messages. */
  recentOutput(): string;
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
  const replica = await startReplicaProcess({
    args: ["--listen", "127.0.0.1:0", "--data", dataDir, ...(options.args ?? [])],
    env: { MERIDIAN_LOG_LEVEL: "warn", ...options.env },
    timeoutMs: options.timeoutMs ?? 20_000,
  });
  return {
    url: replica.url,
    host: new URL(replica.url).host,
    dataDir,
    child: replica.child,
    recentOutput: replica.recentOutput,
    stop: replica.stop,
    kill9: replica.kill9,
    dispose: async () => {
      await replica.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
