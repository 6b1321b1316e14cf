// `meridian up`: runs the whole registry of a topology file on this machine, each
// replica its own process, until SIGTERM or SIGINT. `npm start` runs it with the
// repository's meridian.yaml.
import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import type { Command } from "commander";
import { LocalCluster } from "../cluster/local-cluster.ts";
import type { Config } from "../config/config-schema.ts";
import { ConfigError, loadConfig } from "../config/load-config.ts";
import { createLogger } from "../logger.ts";
import { startGlobalEndpoint } from "../routing/start-global-endpoint.ts";

export function registerUpCommand(program: Command): void {
  program
    .command("up")
    .description("run every replica of a topology file locally, each as its own process")
    .option("-c, --config <file>", "topology file", "meridian.yaml")
    .option("--quiet", "do not forward the replicas' logs")
    .action(async (flags: { config: string; quiet?: boolean }) => {
      await up(flags.config, flags.quiet ?? false);
    });
}

async function up(configFile: string, quiet: boolean): Promise<void> {
  let config: Config;
  try {
    config = await loadConfig({ file: configFile, env: process.env }, { topologyOnly: true });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`meridian: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  if (!config.replicas || config.replicas.length === 0) {
    process.stderr.write(`meridian: ${configFile} has no replicas to start\n`);
    process.exit(2);
  }
  const secret = config.replication.secret ?? (await localSecret(configFile, "replication-secret"));
  const signingKey = config.auth.signingKey ?? (await localSecret(configFile, "token-signing-key"));
  const cluster = await LocalCluster.start({
    configFile,
    config: {
      ...config,
      replication: { ...config.replication, secret },
      auth: { ...config.auth, signingKey },
    },
    onLine: quiet ? undefined : (_region, line) => process.stdout.write(`${line}\n`),
  });
  // A global endpoint hosted by a replica started with it; otherwise it runs here.
  let global: Awaited<ReturnType<typeof startGlobalEndpoint>> | undefined;
  try {
    global =
      config.globalEndpoint && config.globalEndpoint.hostedBy === undefined
        ? await startGlobalEndpoint(config, createLogger(config.log.level))
        : undefined;
  } catch (error) {
    // The replicas already started go too: nothing of a registry that cannot serve its
    // name is left running.
    await cluster.stop();
    throw new Error(`global endpoint: ${(error as Error).message}`);
  }
  const rows = [...cluster.replicas.values()].map(
    (r) => `  ${r.entry.region.padEnd(16)} ${r.url.padEnd(26)} ${r.entry.home ? "home" : ""}`,
  );
  process.stderr.write(
    `Meridian ${config.registry.name}: ${rows.length} replicas running` +
      `${config.wan ? ` (WAN emulation: ${config.wan.rttMs} ms round trip)` : ""}\n${rows.join("\n")}\n` +
      (config.globalEndpoint
        ? `  global endpoint  ${global?.endpoint.url ?? `http://${config.globalEndpoint.listen}`} (${config.globalEndpoint.mode} mode${config.globalEndpoint.hostedBy ? `, in ${config.globalEndpoint.hostedBy.join(", ")}'s process` : ""})\n`
        : ""),
  );
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    Promise.all([global?.close(), cluster.stop()]).then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

/**
 * Without a configured secret (replication credential, token signing key), the local
 * registry makes one once and keeps it beside the data, so that a replica restarted on
 * its own still authenticates to its peers and honours the tokens already issued.
 */
async function localSecret(configFile: string, name: string): Promise<string> {
  const path = join(resolve(dirname(configFile)), "data", name);
  try {
    return (await readFile(path, "utf8")).trim();
  } catch {
    const secret = randomBytes(24).toString("hex");
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, secret, { mode: 0o600 });
    return secret;
  }
}
