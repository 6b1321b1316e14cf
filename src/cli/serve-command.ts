// `meridian serve`: runs one replica until SIGTERM or SIGINT.
import cluster from "node:cluster";
import { availableParallelism } from "node:os";
import type { Command } from "commander";
import { ListenError } from "../config/listen-address.ts";
import { ConfigError, loadConfig } from "../config/load-config.ts";
import { announce, createLogger } from "../logger.ts";
import { type NodeRole, soleNode, workerCount } from "../nodes/node-role.ts";
import { isWorkerMessage, type ReadyMessage } from "../nodes/worker-messages.ts";
import { runWorkerPrimary } from "../nodes/worker-primary.ts";
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
  workers?: string;
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
    .option(
      "-w, --workers <n|auto>",
      "processes serving this replica; auto: one per core (env MERIDIAN_WORKERS)",
    )
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
  const workers = workerCount(config.workers, availableParallelism());
  if (workers > 1 && cluster.isPrimary) {
    runWorkerPrimary({
      count: workers,
      log,
      describe: { data: config.data, region: config.region },
    });
    exitWithParent(() => process.kill(process.pid, "SIGTERM"));
    return;
  }
  const role = cluster.isWorker ? workerRole() : soleNode;
  let replica: Awaited<ReturnType<typeof startReplica>>;
  try {
    replica = await startReplica(config, log, role);
  } catch (error) {
    // One line, and the process ends: a store that opened keeps it alive otherwise.
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`meridian: ${message}\n`);
    if (!(error instanceof ConfigError || error instanceof ListenError)) {
      log.debug({ err: error }, "the replica could not start");
    }
    log.flush();
    process.exit(error instanceof ConfigError ? 2 : 1);
  }
  if (cluster.isWorker) {
    // The primary says "listening" once every worker is.
    process.send?.({
      type: "meridian:ready",
      url: replica.url,
      leaderUrl: replica.leaderUrl,
    } satisfies ReadyMessage);
  } else {
    announce(log, { url: replica.url, data: config.data, region: config.region }, "listening");
  }
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
  if (!cluster.isWorker) exitWithParent(() => stop("parent gone"));
}

/**
 * With MERIDIAN_EXIT_WITH_PARENT=1 (set by whatever starts replicas as its children, such
 * as `meridian up`): stops once the parent is gone, so that a supervisor killed with
 * SIGKILL leaves no replica behind holding its port and data folder.
 */
function exitWithParent(stop: () => void): void {
  if (process.env.MERIDIAN_EXIT_WITH_PARENT !== "1") return;
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    stop();
  }, 500);
  timer.unref();
}

/** A worker's place among its replica's workers, as its primary started it. */
function workerRole(): NodeRole {
  let leaderUrl = process.env.MERIDIAN_LEADER_URL || undefined;
  process.on("message", (message: unknown) => {
    if (isWorkerMessage(message) && message.type === "meridian:leader") leaderUrl = message.url;
  });
  return {
    slot: Number(process.env.MERIDIAN_NODE_SLOT ?? 0),
    slots: Number(process.env.MERIDIAN_NODE_SLOTS ?? 1),
    leaderUrl: () => leaderUrl,
  };
}
