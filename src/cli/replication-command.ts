// `meridian replication list`: every replica of the topology with its regional endpoint
// and status, read from each replica's /_meridian/status. A replica that does not answer
// is listed as Failed with the reason, and the command then exits 1.
import type { Command } from "commander";
import { loadConfig, replicaEndpoint } from "../config/load-config.ts";
import type { ReplicaStatusReport } from "../replication/status-endpoint.ts";
import { AdminClient } from "./admin-client.ts";
import { unreachableReason } from "./unreachable-reason.ts";

export interface ReplicationListing {
  name: string;
  region: string;
  endpoint: string;
  home: boolean;
  globalEndpointRouting: boolean;
  status: string;
  reason?: string;
  pending?: ReplicaStatusReport["pending"];
  peers?: ReplicaStatusReport["peers"];
}

export function registerReplicationCommand(program: Command): void {
  const replication = program
    .command("replication")
    .description("manage the replicas of the registry");
  replication
    .command("list")
    .description("list the replicas with their endpoints and status")
    .option("-c, --config <file>", "topology file", "meridian.yaml")
    .option("-o, --output <format>", "table or json", "table")
    .action(async (flags: { config: string; output: string }) => {
      const listing = await listReplications(flags.config);
      // A script checking the registry's health reads the exit code.
      if (listing.some((r) => r.status === "Failed")) process.exitCode = 1;
      if (flags.output === "json") {
        process.stdout.write(`${JSON.stringify(listing, null, 2)}\n`);
        return;
      }
      const header = `${"NAME".padEnd(16)} ${"ENDPOINT".padEnd(26)} ${"HOME".padEnd(5)} ${"STATUS".padEnd(9)} PENDING`;
      const lines = listing.map((r) => {
        const pending = r.pending
          ? `${r.pending.records} records, ${r.pending.blobs} blobs`
          : (r.reason ?? "");
        return `${r.name.padEnd(16)} ${r.endpoint.padEnd(26)} ${(r.home ? "yes" : "").padEnd(5)} ${r.status.padEnd(9)} ${pending}`;
      });
      process.stdout.write(`${[header, ...lines].join("\n")}\n`);
    });
  registerUpdate(replication);
}

function registerUpdate(replication: Command): void {
  replication
    .command("update <region>")
    .description(
      "change a replica; --global-endpoint-routing false takes it out of routing (it keeps replicating)",
    )
    .option("-c, --config <file>", "topology file", "meridian.yaml")
    .requiredOption("--global-endpoint-routing <bool>", "true or false")
    .action(async (region: string, flags: { config: string; globalEndpointRouting: string }) => {
      const value = flags.globalEndpointRouting.toLowerCase();
      if (value !== "true" && value !== "false") {
        process.stderr.write("meridian: --global-endpoint-routing takes true or false\n");
        process.exit(2);
      }
      await updateReplication(flags.config, region, value === "true");
      process.stdout.write(
        `${region}: global endpoint routing ${value === "true" ? "enabled" : "disabled"}\n`,
      );
    });
}

export async function listReplications(configFile: string): Promise<ReplicationListing[]> {
  const config = await loadConfig({ file: configFile, env: {} }, { topologyOnly: true });
  const replicas = config.replicas ?? [];
  return Promise.all(
    replicas.map(async (entry): Promise<ReplicationListing> => {
      const endpoint = replicaEndpoint(entry);
      const base = {
        name: entry.region,
        region: entry.region,
        endpoint,
        home: entry.home,
        globalEndpointRouting: entry.globalEndpointRouting,
      };
      try {
        const response = await fetch(`${endpoint}/_meridian/status`, {
          signal: AbortSignal.timeout(3_000),
        });
        if (!response.ok)
          return {
            ...base,
            status: "Failed",
            reason: `status endpoint answered ${response.status}`,
          };
        const report = (await response.json()) as ReplicaStatusReport;
        return { ...base, status: report.status, pending: report.pending, peers: report.peers };
      } catch (error) {
        return { ...base, status: "Failed", reason: unreachableReason(error, endpoint) };
      }
    }),
  );
}

/** Switches the global endpoint's routing to one replica on or off. */
export async function updateReplication(
  configFile: string,
  region: string,
  routing: boolean,
): Promise<void> {
  const config = await loadConfig({ file: configFile, env: {} }, { topologyOnly: true });
  const entry = config.replicas?.find((r) => r.region === region);
  if (!entry) throw new Error(`no replica in region ${region} in ${configFile}`);
  // The admin credentials of `meridian login` (or the environment), once users exist.
  const client = await AdminClient.resolve(replicaEndpoint(entry));
  await client
    .send("PUT", "/_meridian/status", { globalEndpointRouting: routing })
    .catch((error: unknown) => {
      throw new Error(`${region}: ${(error as Error).message}`);
    });
}
