// Starts the CNCF Distribution registry (Debian's /usr/bin/docker-registry) on a free loopback
// port with a throw-away filesystem store, waits until GET /v2/ answers 200, and stops it.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePorts } from "../test/support/cluster.ts";

export const distributionBinary = "/usr/bin/docker-registry";

export interface DistributionProcess {
  readonly url: string;
  readonly child: ChildProcess;
  readonly dataDir: string;
  /** Kills the registry (SIGTERM, SIGKILL after 5 s) and removes its folder. */
  dispose(): Promise<void>;
}

/** Installs the Debian package when the binary is missing (needs root and apt). */
function ensureDistributionInstalled(): void {
  if (existsSync(distributionBinary)) return;
  process.stderr.write(`${distributionBinary} missing: apt-get install -y docker-registry\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  let result = spawnSync("apt-get", ["install", "-y", "docker-registry"], {
    stdio: "inherit",
    env,
  });
  if (result.status !== 0) {
    spawnSync("apt-get", ["update"], { stdio: "inherit", env });
    result = spawnSync("apt-get", ["install", "-y", "docker-registry"], { stdio: "inherit", env });
  }
  if (result.status !== 0 || !existsSync(distributionBinary)) {
    throw new Error("could not install docker-registry with apt-get");
  }
}

function configYaml(rootDir: string, port: number): string {
  // Same shape as the config shipped with the upstream image (in-memory blob descriptor
  // cache), minus the access log, which Meridian at warn level does not write either.
  return [
    "version: 0.1",
    "log:",
    "  level: error",
    "  accesslog:",
    "    disabled: true",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${rootDir}`,
    "  delete:",
    "    enabled: true",
    "  cache:",
    "    blobdescriptor: inmemory",
    "http:",
    `  addr: 127.0.0.1:${port}`,
    "",
  ].join("\n");
}

function probeV2(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(`${url}/v2/`, { agent: false, timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(0));
  });
}

export async function startDistribution(timeoutMs = 20_000): Promise<DistributionProcess> {
  ensureDistributionInstalled();
  const dataDir = await mkdtemp(join(tmpdir(), "meridian-bench-distribution-"));
  const [port = 0] = await freePorts(1);
  const configPath = join(dataDir, "config.yml");
  await writeFile(configPath, configYaml(join(dataDir, "store"), port));
  const child = spawn(distributionBinary, ["serve", configPath], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-8192);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const dispose = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dataDir, { recursive: true, force: true });
  };
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(
          `docker-registry exited (${child.exitCode ?? child.signalCode})\n${output}`,
        );
      }
      if ((await probeV2(url)) === 200) break;
      if (Date.now() > deadline) throw new Error(`docker-registry did not answer\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } catch (error) {
    await dispose();
    throw error;
  }
  return { url, child, dataDir, dispose };
}
