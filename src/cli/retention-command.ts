// `meridian retention set|show|disable`: retention policies (untagged manifests older than N
// days are deleted from the repositories a pattern matches), through the admin API; they
// are control records and hold in every region. The next gc pass applies them.
import type { Command } from "commander";
import type { RetentionPolicy } from "../gc/retention-policies.ts";
import { AdminClient } from "./admin-client.ts";

export function registerRetentionCommand(program: Command): void {
  const retention = program
    .command("retention")
    .description("retention policies: untagged manifests older than N days are deleted");
  retention
    .command("set")
    .description("set the policy of a repository pattern")
    .option("--repository <pattern>", "e.g. 'team/**' (* within a component, ** across)")
    .option("--untagged-days <n>", "delete untagged manifests older than this", days)
    .option("--registry <endpoint>", "the registry's admin API (default: meridian login's)")
    .action(async (flags: { repository?: string; untaggedDays?: number; registry?: string }) => {
      if (flags.repository === undefined || flags.untaggedDays === undefined) {
        throw new Error("retention set needs --repository <pattern> and --untagged-days <n>");
      }
      const client = await AdminClient.resolve(flags.registry);
      await client.request("PUT", "retention", {
        repositories: flags.repository,
        untaggedDays: flags.untaggedDays,
      });
      process.stdout.write(
        `retention for ${flags.repository}: untagged manifests older than ${flags.untaggedDays} days are deleted (every region)\n`,
      );
    });
  retention
    .command("show")
    .description("list the policies")
    .option("--registry <endpoint>", "the registry's admin API (default: meridian login's)")
    .option("-o, --output <format>", "table or json", "table")
    .action(async (flags: { registry?: string; output: string }) => {
      const client = await AdminClient.resolve(flags.registry);
      const policies = (await client.request("GET", "retention")) as RetentionPolicy[];
      if (flags.output === "json") {
        process.stdout.write(`${JSON.stringify(policies, null, 2)}\n`);
        return;
      }
      if (flags.output !== "table")
        throw new Error(`unknown output format ${flags.output}: table or json`);
      const rows = [
        ["REPOSITORIES", "UNTAGGED-DAYS"],
        ...policies.map((p) => [p.repositories, String(p.untaggedDays)]),
      ];
      const width = Math.max(...rows.map((row) => (row[0] ?? "").length));
      for (const row of rows) process.stdout.write(`${(row[0] ?? "").padEnd(width)}  ${row[1]}\n`);
    });
  retention
    .command("disable")
    .description("remove the policy of a repository pattern")
    .option("--repository <pattern>", "the pattern the policy was set for")
    .option("--registry <endpoint>", "the registry's admin API (default: meridian login's)")
    .action(async (flags: { repository?: string; registry?: string }) => {
      if (flags.repository === undefined) {
        throw new Error("retention disable needs --repository <pattern>");
      }
      const client = await AdminClient.resolve(flags.registry);
      await client.request(
        "DELETE",
        `retention?repositories=${encodeURIComponent(flags.repository)}`,
      );
      process.stdout.write(`retention for ${flags.repository} disabled\n`);
    });
}

function days(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < 0) {
    throw new Error(`--untagged-days wants a number of days (0 or more), not ${value}`);
  }
  return n;
}
