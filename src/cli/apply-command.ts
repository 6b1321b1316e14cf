// `meridian apply -f <file> [--dry-run]`: makes the registry match a desired-state file
// (the same format as meridian.yaml: `replicas`, `auth.users`, `auth.tokens`,
// `webhooks.hooks`) through the admin API, and prints what it changed; `--dry-run` prints
// the plan and changes nothing. Applying the same file twice changes nothing the second
// time.
import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { parse as parseYaml } from "yaml";
import { loadConfig } from "../config/load-config.ts";
import {
  type CurrentState,
  type DesiredState,
  type PlannedChange,
  planChanges,
} from "../control/desired-state.ts";
import { AdminClient } from "./admin-client.ts";

export function registerApplyCommand(program: Command): void {
  program
    .command("apply")
    .description("make the registry match a desired-state file (replicas, users, tokens, webhooks)")
    .requiredOption("-f, --file <file>", "the desired state, as meridian.yaml")
    .option("--dry-run", "print the plan, change nothing")
    .option("--registry <endpoint>", "any replica of the registry (env MERIDIAN_REGISTRY)")
    .action(async (flags: { file: string; dryRun?: boolean; registry?: string }) => {
      const desired = await readDesiredState(flags.file);
      const client = await AdminClient.resolve(
        flags.registry,
        flags.registry ? undefined : flags.file,
      );
      const plan = planChanges(await readCurrentState(client, desired), desired);
      for (const change of plan) {
        if (!flags.dryRun) {
          await client.request(change.request.method, change.request.path, change.request.body);
        }
        process.stdout.write(`${flags.dryRun ? "would " : ""}${describe(change)}\n`);
      }
      const count = `${plan.length} change${plan.length === 1 ? "" : "s"}`;
      process.stdout.write(
        plan.length === 0
          ? "no changes\n"
          : flags.dryRun
            ? `${count} planned\n`
            : `${count} made\n`,
      );
    });
}

function describe(change: PlannedChange): string {
  return `${change.verb} ${change.kind} ${change.name}${change.detail ? ` (${change.detail})` : ""}`;
}

/**
 * The file, checked as a configuration is, reduced to what it manages: a section the
 * file does not write is not managed (its defaults would otherwise delete everything).
 */
async function readDesiredState(file: string): Promise<DesiredState> {
  const config = await loadConfig({ file, env: {} }, { topologyOnly: true });
  const raw = (parseYaml(await readFile(file, "utf8")) ?? {}) as Record<string, unknown>;
  const has = (section: unknown, key: string) =>
    typeof section === "object" && section !== null && key in section;
  const desired: DesiredState = {};
  if ("replicas" in raw) {
    desired.replicas = (config.replicas ?? []).map((r) => ({
      region: r.region,
      home: r.home,
      globalEndpointRouting: r.globalEndpointRouting,
    }));
  }
  if (has(raw.auth, "users")) desired.users = config.auth.users;
  if (has(raw.auth, "tokens")) desired.tokens = config.auth.tokens;
  if (has(raw.webhooks, "hooks")) {
    desired.webhooks = (config.webhooks.hooks ?? []).map((hook) => {
      const secret = hook.secretEnv ? process.env[hook.secretEnv] : undefined;
      if (hook.secretEnv && !secret) {
        throw new Error(`webhook ${hook.name}: environment variable ${hook.secretEnv} is not set`);
      }
      return { ...hook, secret };
    });
  }
  return desired;
}

async function readCurrentState(client: AdminClient, desired: DesiredState): Promise<CurrentState> {
  const read = async <T>(wanted: unknown, path: string): Promise<T[]> =>
    wanted ? ((await client.request("GET", path)) as T[]) : [];
  return {
    replicas: await read(desired.replicas, "replications"),
    users: await read(desired.users, "users"),
    tokens: await read(desired.tokens, "tokens"),
    webhooks: await read(desired.webhooks, "webhooks"),
  };
}
