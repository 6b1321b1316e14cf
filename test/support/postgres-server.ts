// Starts a throwaway PostgreSQL cluster for tests: initdb and pg_ctl in a temp folder, on a
// loopback port the OS picked, fsync off (the cluster dies with the test). As root, the
// server runs as the unprivileged `postgres` user (PostgreSQL refuses to run as root).
// Without PostgreSQL installed, `postgresMissing()` says why, and the tests skip with that
// reason, except in CI (CI set), where a missing server is an error, never a silent skip.
import { execFile } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { chown, mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

const binRoot = "/usr/lib/postgresql";

export interface PostgresServer {
  /** postgres://postgres@127.0.0.1:<port>/postgres (trust authentication, loopback only). */
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

/** The bin folder of the newest installed PostgreSQL (or env POSTGRES_BIN's), or undefined. */
export function findPostgresBin(): string | undefined {
  const chosen = process.env.POSTGRES_BIN;
  if (chosen) return existsSync(join(chosen, "initdb")) ? chosen : undefined;
  if (!existsSync(binRoot)) return undefined;
  const versions = readdirSync(binRoot)
    .filter((name) => existsSync(join(binRoot, name, "bin", "initdb")))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(binRoot, versions[0], "bin");
}

/**
 * Why PostgreSQL tests cannot run here (undefined: they can). In CI this throws instead:
 * the tests that need PostgreSQL must run there.
 */
export function postgresMissing(): string | undefined {
  if (findPostgresBin() !== undefined) return undefined;
  const where = process.env.POSTGRES_BIN ?? `${binRoot}/*/bin`;
  const reason = `PostgreSQL is not installed (no ${where}/initdb; apt-get install postgresql)`;
  if (process.env.CI) throw new Error(`${reason}: required in CI`);
  return reason;
}

/** The user the server runs as: `postgres` when we are root, ourselves otherwise. */
function runAs(): { prefix: string[]; user: string | undefined } {
  if (process.getuid?.() === 0)
    return { prefix: ["runuser", "-u", "postgres", "--"], user: "postgres" };
  return { prefix: [], user: undefined };
}

async function run(command: string[], what: string): Promise<void> {
  const [file = "", ...args] = command;
  try {
    await execFileAsync(file, args, { timeout: 60_000 });
  } catch (error) {
    const detail = error as { stderr?: string; stdout?: string };
    throw new Error(`${what} failed: ${detail.stderr || detail.stdout || String(error)}`, {
      cause: error,
    });
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export async function startPostgres(): Promise<PostgresServer> {
  const bin = findPostgresBin();
  if (bin === undefined) throw new Error(postgresMissing() ?? "PostgreSQL is not installed");
  const dir = await mkdtemp(join(tmpdir(), "meridian-pg-"));
  const data = join(dir, "data");
  const log = join(dir, "server.log");
  const { prefix, user } = runAs();
  if (user) {
    const { stdout } = await execFileAsync("id", ["-u", user]);
    const { stdout: group } = await execFileAsync("id", ["-g", user]);
    await chown(dir, Number(stdout), Number(group));
  }
  try {
    const initdb = [...prefix, join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust"];
    initdb.push("-E", "UTF8", "--no-sync", "--no-instructions");
    // A database whose default collation is a language's (ICU en-US: "a" < "B" < "_x"), as
    // a production one often is: the driver must sort its keys bytewise all the same.
    // PostgreSQL before 15 has no ICU default: then the plain C locale.
    const icu = ["--locale=C.UTF-8", "--locale-provider=icu", "--icu-locale=en-US"];
    await run([...initdb, ...icu], "initdb").catch(async () => {
      await rm(data, { recursive: true, force: true });
      await run(initdb, "initdb");
    });
    // The port was free a moment ago; another process may take it first: try again.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const settings = [
        "-c listen_addresses=127.0.0.1",
        `-c port=${port}`,
        `-k ${dir}`,
        "-c fsync=off",
        "-c synchronous_commit=off",
        "-c full_page_writes=off",
        "-c max_connections=200",
      ].join(" ");
      try {
        await run(
          [
            ...prefix,
            join(bin, "pg_ctl"),
            "-D",
            data,
            "-l",
            log,
            "-w",
            "-t",
            "60",
            "-o",
            settings,
          ].concat(["start"]),
          "pg_ctl start",
        );
      } catch (error) {
        if (attempt < 3) continue;
        const serverLog = await readFile(log, "utf8").catch(() => "");
        throw new Error(`${String(error)}\n${serverLog}`, { cause: error });
      }
      const stop = async () => {
        await run(
          [...prefix, join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop"],
          "pg_ctl stop",
        ).catch(() => {});
        await rm(dir, { recursive: true, force: true });
      };
      return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, port, stop };
    }
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
