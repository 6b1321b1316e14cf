// Runs the real skopeo binary for end-to-end tests, isolated from the machine's container
// configuration: its own policy, empty registries.conf, HOME and XDG folders in a temp folder.
import { execFile } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

export const SKOPEO_BIN = process.env.SKOPEO_BIN ?? "/usr/bin/skopeo";

/** skopeo runs with --debug; failure messages keep the end, which names the last request. */
const STDERR_TAIL_LINES = 40;

function tailLines(text: string): string {
  return text.trimEnd().split("\n").slice(-STDERR_TAIL_LINES).join("\n");
}

export interface SkopeoResult {
  readonly stdout: string;
  readonly stderr: string;
}

/** A failed skopeo run: the message carries the command line, exit status and stderr. */
export class SkopeoError extends Error {
  constructor(
    readonly args: readonly string[],
    readonly code: number | string | null,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(
      `skopeo ${args.join(" ")} failed (exit ${code})\n--- stderr (last ${STDERR_TAIL_LINES} lines) ---\n${tailLines(stderr)}`,
    );
  }

  /** skopeo's own error lines (`level=fatal`), without the debug chatter. */
  get fatal(): string {
    return this.stderr
      .split("\n")
      .filter((line) => line.includes("level=fatal"))
      .join("\n");
  }
}

export interface Skopeo {
  /** Runs `skopeo <global options> <args>`; rejects with a SkopeoError on a non-zero exit. */
  run(args: readonly string[]): Promise<SkopeoResult>;
  /** Runs a command that must fail; resolves with its error, rejects if it succeeded. */
  runExpectingFailure(args: readonly string[]): Promise<SkopeoError>;
}

export interface SkopeoOptions {
  /** Milliseconds before skopeo is killed. */
  timeoutMs?: number;
}

/** Prepares an isolated skopeo environment under `workDir` (created if needed). */
export async function createSkopeo(workDir: string, options: SkopeoOptions = {}): Promise<Skopeo> {
  const home = join(workDir, "home");
  const runtimeDir = join(workDir, "run");
  const tmpDir = join(workDir, "tmp");
  const registriesD = join(workDir, "registries.d");
  for (const dir of [home, runtimeDir, tmpDir, registriesD]) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  }
  // Signatures are looked up (and, on delete, removed) here rather than in /var/lib/containers.
  const sigstore = join(workDir, "sigstore");
  await mkdir(sigstore, { recursive: true });
  await writeFile(
    join(registriesD, "default.yaml"),
    `default-docker:\n  lookaside: file://${sigstore}\n  lookaside-staging: file://${sigstore}\n`,
  );
  const policy = join(workDir, "policy.json");
  await writeFile(policy, JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }));
  const registriesConf = join(workDir, "registries.conf");
  await writeFile(registriesConf, "");

  const globalArgs = [
    // Every HTTP request on stderr: when a command fails or hangs, the tail says where.
    "--debug",
    "--policy",
    policy,
    "--registries-conf",
    registriesConf,
    "--registries.d",
    registriesD,
    "--tmpdir",
    tmpDir,
  ];
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: home,
    XDG_RUNTIME_DIR: runtimeDir,
    XDG_CONFIG_HOME: join(home, ".config"),
    XDG_DATA_HOME: join(home, ".local", "share"),
    TMPDIR: tmpDir,
    REGISTRIES_CONFIG_PATH: registriesConf,
    CONTAINERS_REGISTRIES_CONF: registriesConf,
    // Never let skopeo reach for a proxy: every registry in these tests is on loopback.
    NO_PROXY: "*",
    no_proxy: "*",
  };
  const timeout = options.timeoutMs ?? 60_000;

  const run = async (args: readonly string[]): Promise<SkopeoResult> => {
    const fullArgs = [...globalArgs, ...args];
    try {
      const { stdout, stderr } = await execFileAsync(SKOPEO_BIN, fullArgs, {
        env,
        timeout,
        killSignal: "SIGKILL",
        maxBuffer: 64 * 1024 * 1024,
        encoding: "utf8",
      });
      return { stdout, stderr };
    } catch (error) {
      const failure = error as NodeJS.ErrnoException & {
        stdout?: string;
        stderr?: string;
        code?: number | string | null;
        killed?: boolean;
        signal?: string | null;
      };
      const code = failure.killed
        ? `killed by ${failure.signal} after ${timeout} ms`
        : failure.code;
      throw new SkopeoError(args, code ?? null, failure.stdout ?? "", failure.stderr ?? "");
    }
  };

  return {
    run,
    runExpectingFailure: async (args) => {
      let result: SkopeoResult;
      try {
        result = await run(args);
      } catch (error) {
        if (error instanceof SkopeoError) return error;
        throw error;
      }
      throw new Error(
        `skopeo ${args.join(" ")} succeeded but was expected to fail\n--- stdout ---\n${result.stdout}`,
      );
    },
  };
}
