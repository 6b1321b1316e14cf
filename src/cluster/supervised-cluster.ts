// A local cluster under its supervisor: every replica of the topology (and those added
// since) as its own process, restarted with backoff when it exits unexpectedly, and the
// supervisor's API through which the home replica has replicas added (`replication
// create`) and removed once drained (`replication delete`). `meridian up` runs one; the
// lifecycle tests too.
import { join } from "node:path";
import type { Config } from "../config/config-schema.ts";
import { LocalCluster, type LocalClusterOptions } from "./local-cluster.ts";
import { SupervisorApi } from "./supervisor-api.ts";
import { SupervisorState } from "./supervisor-state.ts";

export interface SupervisedClusterOptions {
  configFile: string;
  /** The topology, with the shared secrets filled in. */
  config: Config;
  /** Where added replicas get their data folders and the supervisor keeps its state. */
  dataRoot: string;
  env?: NodeJS.ProcessEnv;
  onLine?: LocalClusterOptions["onLine"];
  onEvent?: LocalClusterOptions["onEvent"];
}

export interface SupervisedCluster {
  readonly cluster: LocalCluster;
  stop(): Promise<void>;
}

export async function startSupervisedCluster(
  options: SupervisedClusterOptions,
): Promise<SupervisedCluster> {
  const state = await SupervisorState.load(join(options.dataRoot, "supervisor.json"));
  const fileRegions = new Set((options.config.replicas ?? []).map((r) => r.region));
  let cluster: LocalCluster | undefined;
  const supervisor = await SupervisorApi.start({
    async add(request) {
      if (!cluster) throw new Error("the registry is still starting");
      const entry = await cluster.addReplica({ ...request, dataRoot: options.dataRoot });
      await state.add(entry);
      return entry;
    },
    async remove(region) {
      await cluster?.removeReplica(region);
      await state.remove(region, fileRegions.has(region));
    },
  });
  try {
    cluster = await LocalCluster.start({
      configFile: options.configFile,
      config: options.config,
      env: {
        ...options.env,
        MERIDIAN_SUPERVISOR: supervisor.address.url,
        MERIDIAN_SUPERVISOR_TOKEN: supervisor.address.token,
      },
      added: state.added,
      removed: state.removed,
      restartOnExit: true,
      onLine: options.onLine,
      onEvent: options.onEvent,
    });
  } catch (error) {
    await supervisor.close();
    throw error;
  }
  const running = cluster;
  return {
    cluster: running,
    async stop() {
      await running.stop();
      await supervisor.close();
    },
  };
}
