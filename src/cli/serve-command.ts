// `meridian serve`: runs one replica until SIGTERM or SIGINT.
import type { Command } from "commander";
import { ListenError } from "../config/listen-address.ts";
import { ConfigError, loadConfig } from "../config/load-config.ts";
import { announce, createLogger } from "../logger.ts";
import { startReplica } from "../replica.ts";
import { joinedConfig } from "./join-replica.ts";

interface ServeFlags {
  config?: string;
  listen?: string;
  data?: string;
  logLevel?: string;
  replicaId?: string;
  region?: string;
  insecureNoAuth?: boolean;
  allowHttp?: boolean;
  join?: string;
  joinToken?: string;
  endpoint?: string;
}

export function registerServeCommand(program: Command): void {
  program
    .command("serve")
    .description("run one registry replica")
    .option("-c, --config <file>", "YAML configuration file (env MERIDIAN_CONFIG)")
    .option("-l, --listen <host:port>", "address to listen on (env MERIDIAN_LISTEN)", undefined)
    .option("-d, --data <folder>", "data folder (env MERIDIAN_DATA)")
    .option(
      "--log-level <level>",
      "fatal|error|warn|info|debug|trace|silent (env MERIDIAN_LOG_LEVEL)",
    )
    .option(
      "--replica-id <id>",
      "this replica's id (default: generated once, kept in the data folder)",
    )
    .option("--insecure-no-auth", "serve without authentication on a non-loopback address")
    .option("--allow-http", "serve plain HTTP on a non-loopback address (behind a TLS proxy)")
    .option(
      "-r, --region <region>",
      "with a `replicas` list in the config, which replica this is (env MERIDIAN_REGION)",
    )
    .option("--join <home endpoint>", "join the registry whose home replica is there")
    .option("--join-token <token>", "the one-time token of meridian replication create")
    .option("--endpoint <url>", "this replica's regional endpoint, as peers and clients reach it")
    .action(async (flags: ServeFlags) => {
      await serve(flags);
    });
}

async function serve(flags: ServeFlags): Promise<void> {
  let config: Awaited<ReturnType<typeof loadConfig>>;
  try {
    config = await loadConfig({ file: flags.config, env: process.env, flags });
    if (flags.endpoint) config = { ...config, endpoint: flags.endpoint };
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`meridian: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  if (flags.join) {
    // One line and a non-zero exit for a refused or unreachable join.
    config = await joinedConfig(config, { home: flags.join, token: flags.joinToken });
  }
  const log = createLogger(config.log.level);
  let replica: Awaited<ReturnType<typeof startReplica>>;
  try {
    replica = await startReplica(config, log);
  } catch (error) {
    if (error instanceof ConfigError || error instanceof ListenError) {
      process.stderr.write(`meridian: ${error.message}\n`);
      log.flush();
      process.exit(error instanceof ConfigError ? 2 : 1);
    }
    throw error;
  }
  announce(log, { url: replica.url, data: config.data, region: config.region }, "listening");
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    announce(log, { signal }, "stopping");
    replica.close().then(
      () => {
        log.flush();
        process.exit(0);
      },
      (error: unknown) => {
        log.error({ err: error }, "shutdown failed");
        log.flush();
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}
