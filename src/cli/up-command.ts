// `meridian up`: runs the whole registry of a topology file on this machine, each
// replica its own process, until SIGTERM or SIGINT. `npm start` runs it with the
// repository's meridian.yaml.
import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import type { Command } from "commander";
import { startSupervisedCluster } from "../cluster/supervised-cluster.ts";
import { byCodeUnits } from "../code-unit-order.ts";
import type { Config } from "../config/config-schema.ts";
import { ConfigError, loadConfig, replicaEndpoint } from "../config/load-config.ts";
import { remoteReplicaRecords, routesOf } from "../control/replica-routes.ts";
import { readReplicaStatus } from "../control/replica-status-reader.ts";
import { createLogger } from "../logger.ts";
import { PeerClient } from "../replication/peer-client.ts";
import type { startGlobalEndpoint } from "../routing/start-global-endpoint.ts";
import { UpConsole } from "./up-console.ts";

export function registerUpCommand(program: Command): void {
  program
    .command("up")
    .description(
      "run every replica of a topology file locally, each as its own process, and supervise them",
    )
    .option("-c, --config <file>", "topology file", "meridian.yaml")
    .option(
      "--log-format <format>",
      "human (a console of events) or json (the replicas' logs)",
      "human",
    )
    .option("--quiet", "print only the table of regions and the closing line")
    .action(async (flags: { config: string; quiet?: boolean; logFormat: string }) => {
      if (flags.logFormat !== "human" && flags.logFormat !== "json") {
        process.stderr.write(
          `meridian: --log-format takes human or json, not ${flags.logFormat}\n`,
        );
        process.exit(2);
      }
      await up(flags.config, flags.logFormat, flags.quiet ?? false);
    });
}

async function up(configFile: string, format: "human" | "json", quiet: boolean): Promise<void> {
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
  const screen = new UpConsole(format);
  if (quiet) screen.silence();
  const supervised = await startSupervisedCluster({
    configFile,
    config: {
      ...config,
      replication: { ...config.replication, secret },
      auth: { ...config.auth, signingKey },
    },
    dataRoot: join(resolve(dirname(configFile)), "data"),
    onLine: (region, line) => screen.replicaLine(region, line),
    onEvent: (region, message) => screen.event(region, message),
  });
  const running = supervised.cluster;
  // A global endpoint hosted by a replica started with it; otherwise it runs here.
  let global: Awaited<ReturnType<typeof startGlobalEndpoint>> | undefined;
  try {
    global =
      config.globalEndpoint && config.globalEndpoint.hostedBy === undefined
        ? await (await import("../routing/start-global-endpoint.ts")).startGlobalEndpoint(
            config,
            createLogger(config.log.level),
            {
              membership: homeReplicaSet(config, secret),
            },
          )
        : undefined;
  } catch (error) {
    // The replicas already started go too: nothing of a registry that cannot serve its
    // name is left running.
    await supervised.stop();
    throw new Error(`global endpoint: ${(error as Error).message}`);
  }
  const sorted = [...running.replicas.values()].sort(
    (a, b) =>
      Number(b.entry.home) - Number(a.entry.home) || byCodeUnits(a.entry.region, b.entry.region),
  );
  // Each replica's own status, as it reports it now (a replica still catching up says so).
  const states = await Promise.all(
    sorted.map((r) =>
      readReplicaStatus(r.url, 1_000).then(
        (report) => report.status,
        () => "starting",
      ),
    ),
  );
  const rows = sorted.map(
    (r, i) =>
      `  ${r.entry.region.padEnd(16)} ${r.url.padEnd(26)} ${(states[i] ?? "").padEnd(9)} ${r.entry.home ? "home" : ""}`,
  );
  const portalBase = (sorted.find((r) => r.entry.home) ?? sorted[0])?.url ?? "";
  screen.print(
    `Meridian ${config.registry.name}: ${rows.length} replicas running` +
      `${config.wan ? ` (WAN emulation: ${config.wan.rttMs} ms round trip)` : ""}\n` +
      `  ${"REGION".padEnd(16)} ${"ENDPOINT".padEnd(26)} ${"STATUS".padEnd(9)} ROLE\n${rows.join("\n")}\n` +
      (config.globalEndpoint
        ? `  global endpoint  ${global?.endpoint.url ?? `http://${config.globalEndpoint.listen}`} (${config.globalEndpoint.mode} mode${config.globalEndpoint.hostedBy ? `, in ${config.globalEndpoint.hostedBy.join(", ")}'s process` : ""})\n`
        : "") +
      `  portal           ${portalBase}/portal/ (every replica serves it)\n` +
      "Add a region: meridian replication create --location <region>. Stop: Ctrl-C.",
  );
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    // What the replicas say while they stop (resets of closing links) is not news.
    screen.silence();
    Promise.all([global?.close(), supervised.stop()]).then(
      () => {
        screen.print(`Meridian ${config.registry.name} stopped.`);
        process.exit(0);
      },
      (error: unknown) => {
        screen.print(
          `Meridian ${config.registry.name} stopped with an error: ${(error as Error).message}`,
        );
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

/**
 * The standalone endpoint asks the home replica who the replicas are (through the peer
 * API, with the replication credential), so that it routes to replicas created later.
 */
function homeReplicaSet(config: Config, secret: string) {
  const home = config.replicas?.find((r) => r.home);
  if (!home) return undefined;
  const peer = new PeerClient({ region: home.region, url: replicaEndpoint(home) }, secret);
  return async () => routesOf(await remoteReplicaRecords(peer));
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
