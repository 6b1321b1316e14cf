// `meridian replication create|list|show|update|delete`, as `az acr replication`: each a
// call of the admin API of the registry (--registry, $MERIDIAN_REGISTRY, the last login,
// or the home replica of the topology file). `list` exits 1 when a replica is Failed, so
// that a script can check the registry's health; when the registry's admin API cannot be
// reached at all, it lists the topology file's replicas, each read directly.
import type { Command } from "commander";
import { stringify as toYaml } from "yaml";
import { loadConfig, replicaEndpoint } from "../config/load-config.ts";
import { readReplicaStatus } from "../control/replica-status-reader.ts";
import type { ReplicationView } from "../control/replication-view.ts";
import type { RegistryUsage } from "../control/usage-api.ts";
import { AdminClient, AdminRequestError } from "./admin-client.ts";
import { formatBytes } from "./format-bytes.ts";
import { outputFormat, render } from "./replication-output.ts";
import { watchReplication } from "./replication-watch.ts";

interface CommonFlags {
  registry?: string;
  config?: string;
  output: string;
}

export function registerReplicationCommand(program: Command): void {
  const replication = program
    .command("replication")
    .description("manage the replicas of the registry (as az acr replication)");
  const common = (command: Command) =>
    command
      .option("--registry <endpoint>", "any replica of the registry (env MERIDIAN_REGISTRY)")
      .option("-c, --config <file>", "topology file whose home replica to ask")
      .option("-o, --output <format>", "table, json or yaml", "table");

  common(replication.command("list").description("list the replicas with their status")).action(
    async (flags: CommonFlags) => {
      const format = outputFormat(flags.output);
      const views = await listReplications(flags);
      if (views.some((v) => v.status === "Failed")) process.exitCode = 1;
      print(render(views, format));
    },
  );

  common(
    replication
      .command("usage")
      .description("bytes stored per region and transferred per region pair (egress)"),
  ).action(async (flags: CommonFlags) => {
    const format = outputFormat(flags.output);
    const client = await AdminClient.resolve(flags.registry, flags.config);
    const usage = (await client.request("GET", "usage")) as RegistryUsage;
    if (format === "json") print(JSON.stringify(usage, null, 2));
    else if (format === "yaml") print(toYaml(usage).trimEnd());
    else print(usageTable(usage));
  });

  common(replication.command("show <name>").description("show one replica"))
    .option("--watch", "redraw until the replica is Ready")
    .action(async (name: string, flags: CommonFlags & { watch?: boolean }) => {
      const format = outputFormat(flags.output);
      const client = await AdminClient.resolve(flags.registry, flags.config);
      const get = async () =>
        (await client.request(
          "GET",
          `replications/${encodeURIComponent(name)}`,
        )) as ReplicationView;
      if (flags.watch) {
        const final = await watchReplication(get);
        if (final.status === "Failed") process.exitCode = 1;
        return;
      }
      print(render(await get(), format));
    });

  common(replication.command("create").description("add a replica in a region"))
    .requiredOption("-l, --location <region>", "the region, e.g. eastus")
    .option("-n, --name <name>", "the replication's name (its location)")
    .option("--region-endpoint-enabled <bool>", "route the global endpoint's clients to it", "true")
    .option("--latitude <degrees>", "for a region the catalogue does not know")
    .option("--longitude <degrees>", "for a region the catalogue does not know")
    .action(
      async (
        flags: CommonFlags & {
          location: string;
          name?: string;
          regionEndpointEnabled: string;
          latitude?: string;
          longitude?: string;
        },
      ) => {
        const format = outputFormat(flags.output);
        const client = await AdminClient.resolve(flags.registry, flags.config);
        const created = (await client.request("POST", "replications", {
          location: flags.location,
          ...(flags.name !== undefined ? { name: flags.name } : {}),
          regionEndpointEnabled: booleanFlag(
            "--region-endpoint-enabled",
            flags.regionEndpointEnabled,
          ),
          ...coordinates(flags.latitude, flags.longitude),
        })) as ReplicationView & { joinToken?: string; joinCommand?: string };
        const { joinToken: _token, joinCommand, ...view } = created;
        print(render(view, format));
        if (format !== "table") return;
        print(
          joinCommand
            ? `\nRun this on the new machine (the token works once, for a day):\n  ${joinCommand}`
            : `\nWatch it become Ready: meridian replication show ${view.name} --watch`,
        );
      },
    );

  common(replication.command("update <name>").description("change a replica"))
    .option("--region-endpoint-enabled <bool>", "false takes it out of global routing")
    .option("--global-endpoint-routing <bool>", "the same as --region-endpoint-enabled")
    .action(
      async (
        name: string,
        flags: CommonFlags & { regionEndpointEnabled?: string; globalEndpointRouting?: string },
      ) => {
        const format = outputFormat(flags.output);
        const value = flags.regionEndpointEnabled ?? flags.globalEndpointRouting;
        if (value === undefined) throw new Error("give --region-endpoint-enabled true|false");
        const enabled = booleanFlag("--region-endpoint-enabled", value);
        const client = await AdminClient.resolve(flags.registry, flags.config);
        const view = (await client
          .request("PATCH", `replications/${encodeURIComponent(name)}`, {
            regionEndpointEnabled: enabled,
          })
          .catch((error: unknown) => {
            throw new Error(`${name}: ${(error as Error).message}`);
          })) as ReplicationView;
        print(render(view, format));
      },
    );

  common(replication.command("delete <name>").description("drain and remove a replica"))
    .option("--no-wait", "return once the deletion began")
    .action(async (name: string, flags: CommonFlags & { wait: boolean }) => {
      const client = await AdminClient.resolve(flags.registry, flags.config);
      await client.request("DELETE", `replications/${encodeURIComponent(name)}`);
      if (!flags.wait) {
        print(`${name}: Deleting (its records drain into the other replicas first)`);
        return;
      }
      await waitGone(client, name);
      print(`${name}: deleted`);
    });
}

async function listReplications(flags: CommonFlags): Promise<ReplicationView[]> {
  const client = await AdminClient.resolve(flags.registry, flags.config);
  try {
    return (await client.request("GET", "replications")) as ReplicationView[];
  } catch (error) {
    // Only a registry whose API does not answer at all is listed from the file.
    if (error instanceof AdminRequestError || !flags.config) throw error;
    return listFromFile(flags.config);
  }
}

/** Every replica of the topology file, read directly: the registry's API is down. */
async function listFromFile(file: string): Promise<ReplicationView[]> {
  const config = await loadConfig({ file, env: {} }, { topologyOnly: true });
  return Promise.all(
    (config.replicas ?? []).map(async (entry): Promise<ReplicationView> => {
      const endpoint = replicaEndpoint(entry);
      const base: ReplicationView = {
        name: entry.region,
        location: entry.region,
        region: entry.region,
        endpoint,
        home: entry.home,
        regionEndpointEnabled: entry.globalEndpointRouting,
        provisioner: "local",
        provisioningState: "Succeeded",
        status: "Failed",
        lagSeconds: 0,
        pending: { records: 0, blobs: 0, bytes: 0 },
        bytesPerSecond: 0,
        createdAt: "",
      };
      try {
        const report = await readReplicaStatus(endpoint, 3_000);
        return { ...base, status: report.status, pending: report.pending };
      } catch (error) {
        return { ...base, statusMessage: (error as Error).message };
      }
    }),
  );
}

/** Waits, with a deadline, until the replica is drained and gone. */
async function waitGone(client: AdminClient, name: string): Promise<void> {
  const deadline = Date.now() + 15 * 60 * 1000;
  while (Date.now() < deadline) {
    const gone = await client.request("GET", `replications/${encodeURIComponent(name)}`).then(
      () => false,
      (error: unknown) => {
        if (error instanceof AdminRequestError && error.status === 404) return true;
        throw error;
      },
    );
    if (gone) return;
    await new Promise((done) => setTimeout(done, 500));
  }
  throw new Error(`${name} is still being deleted; see meridian replication list`);
}

function usageTable(usage: RegistryUsage): string {
  const stored = usage.regions.map(
    (r) =>
      `${r.region.padEnd(16)} ${(r.reachable ? formatBytes(r.storedBytes) : "?").padEnd(12)} ${r.reachable ? `${r.blobs} blobs` : (r.reason ?? "")}`,
  );
  const transfers = usage.transfers.map(
    (t) => `${t.from.padEnd(16)} ${t.to.padEnd(16)} ${formatBytes(t.bytes)}`,
  );
  return [
    `${"REGION".padEnd(16)} ${"STORED".padEnd(12)} BLOBS`,
    ...stored,
    "",
    `${"FROM".padEnd(16)} ${"TO".padEnd(16)} TRANSFERRED`,
    ...(transfers.length > 0 ? transfers : ["(nothing yet)"]),
  ].join("\n");
}

function booleanFlag(name: string, value: string): boolean {
  const lowered = value.toLowerCase();
  if (lowered === "true") return true;
  if (lowered === "false") return false;
  throw new Error(`${name} takes true or false, not '${value}'`);
}

function coordinates(latitude?: string, longitude?: string) {
  if (latitude === undefined && longitude === undefined) return {};
  const lat = Number(latitude);
  const lon = Number(longitude);
  if (!Number.isFinite(lat) || !Number.isFinite(lon)) {
    throw new Error("--latitude and --longitude go together, as numbers of degrees");
  }
  return { latitude: lat, longitude: lon };
}

function print(text: string): void {
  process.stdout.write(`${text}\n`);
}
