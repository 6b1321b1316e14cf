// Starts the object stores the S3 and Azure blob drivers are tested against, as child
// processes on 127.0.0.1 with ports the OS picks and data in temp folders: s3rver (with a
// bucket) and Azurite's blob service (telemetry off: nothing leaves loopback). Both come
// from npm, so they are always there; a test never skips for want of them.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

const repoRoot = new URL("../../", import.meta.url).pathname;
const startTimeoutMs = 30_000;

export interface S3Server {
  endpoint: string;
  bucket: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** The environment a replica process needs to reach it. */
  env: NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

export interface AzuriteServer {
  /** The connection string of Azurite's well-known development account. */
  connectionString: string;
  accountUrl: string;
  env: NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

export async function startS3Server(bucket = "meridian-test"): Promise<S3Server> {
  const directory = await mkdtemp(join(tmpdir(), "meridian-s3rver-"));
  const child = spawn(
    process.execPath,
    [join(repoRoot, "test/support/s3rver-main.mjs"), directory, bucket],
    { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] },
  );
  killOnExit(child);
  const line = await firstMatch(child, /^\{"port":(\d+)\}$/m, "s3rver");
  const endpoint = `http://127.0.0.1:${line[1]}`;
  // s3rver accepts any key pair it is configured with; these are its defaults.
  const credentials = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };
  return {
    endpoint,
    bucket,
    region: "us-east-1",
    credentials,
    env: {
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    },
    stop: () => stopChild(child, directory),
  };
}

/** Azurite's documented development account (not a secret). */
const devAccount = "devstoreaccount1";
const devKey =
  "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

export async function startAzurite(): Promise<AzuriteServer> {
  const location = await mkdtemp(join(tmpdir(), "meridian-azurite-"));
  const child = spawn(
    join(repoRoot, "node_modules/.bin/azurite-blob"),
    [
      "--blobHost",
      "127.0.0.1",
      "--blobPort",
      "0",
      "--location",
      location,
      "--silent",
      "--skipApiVersionCheck",
      "--loose",
      "--disableTelemetry",
    ],
    { cwd: location, stdio: ["ignore", "pipe", "pipe"] },
  );
  killOnExit(child);
  const line = await firstMatch(child, /listens on http:\/\/127\.0\.0\.1:(\d+)/, "Azurite");
  const accountUrl = `http://127.0.0.1:${line[1]}/${devAccount}`;
  const connectionString = `DefaultEndpointsProtocol=http;AccountName=${devAccount};AccountKey=${devKey};BlobEndpoint=${accountUrl};`;
  return {
    connectionString,
    accountUrl,
    env: { AZURE_STORAGE_CONNECTION_STRING: connectionString },
    stop: () => stopChild(child, location),
  };
}

/** Resolves the first match of `pattern` in the child's stdout; rejects if it exits first. */
function firstMatch(child: ChildProcess, pattern: RegExp, what: string): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let output = "";
    const timer = setTimeout(
      () => fail(new Error(`${what} did not start in time`)),
      startTimeoutMs,
    );
    const fail = (error: Error) => {
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(new Error(`${error.message}\n${output}`));
    };
    const onData = (data: Buffer) => {
      output += data.toString();
      const match = output.match(pattern);
      if (match) {
        clearTimeout(timer);
        child.stdout?.off("data", onData);
        child.off("exit", onExit);
        // Keep draining, so that a chatty server never blocks on a full pipe.
        child.stdout?.resume();
        resolve(match);
      }
    };
    const onExit = (code: number | null) => fail(new Error(`${what} exited (${code})`));
    child.stdout?.on("data", onData);
    child.stderr?.on("data", (data: Buffer) => {
      output += data.toString();
    });
    child.once("exit", onExit);
  });
}

/** A server is never left behind when the test process ends without stopping it. */
function killOnExit(child: ChildProcess): void {
  const kill = () => child.kill("SIGKILL");
  process.once("exit", kill);
  child.once("exit", () => process.off("exit", kill));
}

async function stopChild(child: ChildProcess, folder: string): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
  }
  await rm(folder, { recursive: true, force: true });
}
