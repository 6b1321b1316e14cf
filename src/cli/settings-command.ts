// `meridian settings list|set|reset`: the registry's settings that live in the registry
// itself (control records, in every replica without a restart) rather than in each
// replica's configuration file.
import type { Command } from "commander";
import type { SettingView } from "../control/registry-settings.ts";
import { AdminClient } from "./admin-client.ts";

export function registerSettingsCommand(program: Command): void {
  const settings = program.command("settings").description("the registry's settings");
  const registry = (command: Command) =>
    command.option("--registry <endpoint>", "any replica of the registry (env MERIDIAN_REGISTRY)");
  registry(
    settings.command("list").description("every setting, its value and where it comes from"),
  ).action(async (flags: { registry?: string }) => {
    const client = await AdminClient.resolve(flags.registry);
    const listed = (await client.request("GET", "settings")) as SettingView[];
    const lines = listed.map(
      (s) =>
        `${s.name.padEnd(24)} ${JSON.stringify(s.value).padEnd(8)} ${s.source.padEnd(9)} ${s.description}`,
    );
    process.stdout.write(
      `${[`${"NAME".padEnd(24)} ${"VALUE".padEnd(8)} ${"SOURCE".padEnd(9)} MEANING`, ...lines].join("\n")}\n`,
    );
  });
  registry(
    settings.command("set <name> <value>").description("set a setting in every replica"),
  ).action(async (name: string, value: string, flags: { registry?: string }) => {
    const client = await AdminClient.resolve(flags.registry);
    const set = (await client.request("PUT", `settings/${encodeURIComponent(name)}`, {
      value: parseValue(value),
    })) as SettingView;
    process.stdout.write(`${set.name} = ${JSON.stringify(set.value)}\n`);
  });
  registry(
    settings.command("reset <name>").description("back to the configuration file's value"),
  ).action(async (name: string, flags: { registry?: string }) => {
    const client = await AdminClient.resolve(flags.registry);
    await client.request("DELETE", `settings/${encodeURIComponent(name)}`);
    process.stdout.write(`${name}: the configuration file's value again\n`);
  });
}

/** `true`, `300`: JSON values; anything else is a string. */
function parseValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
