// `meridian user add|update|list|delete` and `meridian token add|list|delete`: users (with a
// password) and repository-scoped tokens (with a generated secret, shown once), through the
// admin API of a running registry, so that they take effect in every region at once; or,
// with --config FILE, in a configuration file for a registry not started yet (its comments
// and layout kept). Only slow hashes are stored either way.
import { randomBytes } from "node:crypto";
import { readFile, rename, writeFile } from "node:fs/promises";
import type { Command } from "commander";
import { parseDocument } from "yaml";
import { hashSecret } from "../auth/password-hash.ts";
import { AdminClient } from "./admin-client.ts";

export function registerUserCommands(program: Command): void {
  const user = program
    .command("user")
    .description("manage users (passwords stored as scrypt hashes)");
  const addUser = async (name: string, flags: Flags & { admin?: boolean }) => {
    const password = (await readStdin()).replace(/\r?\n$/, "");
    if (password.length < 8) fail("the password must have at least 8 characters");
    const admin = flags.admin ?? false;
    const permissions = parseGrants(flags.grant);
    if (flags.config) {
      await upsert(flags.config, "users", {
        name,
        passwordHash: await hashSecret(password),
        admin,
        permissions,
      });
      process.stdout.write(`user ${name} saved in ${flags.config}\n`);
      return;
    }
    const client = await AdminClient.resolve(flags.registry);
    await client.request("PUT", `users/${encodeURIComponent(name)}`, {
      password,
      admin,
      permissions,
    });
    process.stdout.write(`user ${name} saved in ${client.endpoint} (every region)\n`);
  };
  for (const verb of ["add", "update"]) {
    withTarget(user.command(`${verb} <name>`))
      .description(
        `${verb === "add" ? "add" : "change"} a user; the password is read from standard input`,
      )
      .option("--admin", "admin role: every repository and the admin API")
      .option(
        "--grant <pattern=actions...>",
        "e.g. 'team/**=pull,push,delete' (repeatable)",
        collect,
        [],
      )
      .action(addUser);
  }
  withTarget(user.command("list"))
    .description("list the users")
    .option("-o, --output <format>", "table or json", "table")
    .action(async (flags: Flags & { output: string }) => {
      const users = (await listOf(flags, "users")) as {
        name: string;
        admin: boolean;
        permissions: Grant[];
      }[];
      print(flags.output, users, ["NAME", "ROLE", "PERMISSIONS"], (u) => [
        u.name,
        u.admin ? "admin" : "",
        grantsText(u.permissions),
      ]);
    });
  withTarget(user.command("delete <name>").alias("remove"))
    .description("delete a user")
    .action(async (name: string, flags: Flags) => deleteOne(flags, "users", name));

  const token = program.command("token").description("manage repository-scoped tokens");
  withTarget(token.command("add <name>"))
    .description("add a token; its secret is printed once")
    .option(
      "--grant <pattern=actions...>",
      "e.g. 'app/*=pull' (repeatable, at least one)",
      collect,
      [],
    )
    .action(async (name: string, flags: Flags) => {
      const grants = parseGrants(flags.grant);
      if (grants.length === 0) fail("a token needs at least one --grant");
      if (flags.config) {
        const secret = randomBytes(24).toString("base64url");
        await upsert(flags.config, "tokens", {
          name,
          secretHash: await hashSecret(secret),
          permissions: grants,
        });
        process.stdout.write(
          `token ${name} saved in ${flags.config}; its secret (shown once):\n${secret}\n`,
        );
        return;
      }
      const client = await AdminClient.resolve(flags.registry);
      const made = (await client.request("PUT", `tokens/${encodeURIComponent(name)}`, {
        permissions: grants,
      })) as { secret: string };
      process.stdout.write(
        `token ${name} saved in ${client.endpoint}; its secret (shown once):\n${made.secret}\n`,
      );
    });
  withTarget(token.command("list"))
    .description("list the tokens")
    .option("-o, --output <format>", "table or json", "table")
    .action(async (flags: Flags & { output: string }) => {
      const tokens = (await listOf(flags, "tokens")) as { name: string; permissions: Grant[] }[];
      print(flags.output, tokens, ["NAME", "PERMISSIONS"], (t) => [
        t.name,
        grantsText(t.permissions),
      ]);
    });
  withTarget(token.command("delete <name>").alias("remove"))
    .description("delete a token")
    .action(async (name: string, flags: Flags) => deleteOne(flags, "tokens", name));
}

interface Flags {
  /** A configuration file to edit instead of the registry (an offline bootstrap). */
  config?: string;
  registry?: string;
  grant: string[];
}

type Grant = { repositories: string; actions: string[] };

/**
 * The options every user and token command takes: by default it goes through the admin
 * API of a running registry; `--config FILE` edits a configuration file instead, for a
 * registry that has not started yet.
 */
function withTarget(command: Command): Command {
  return command
    .option("--registry <endpoint>", "the registry's admin API (default: meridian login's)")
    .option("-c, --config <file>", "edit this configuration file instead (offline bootstrap)");
}

async function listOf(flags: Flags, collection: "users" | "tokens"): Promise<unknown[]> {
  if (flags.config) fail(`list reads a running registry: drop --config`);
  const client = await AdminClient.resolve(flags.registry);
  return (await client.request("GET", collection)) as unknown[];
}

async function deleteOne(flags: Flags, collection: "users" | "tokens", name: string) {
  if (flags.config) {
    await remove(flags.config, collection, name);
    return;
  }
  const client = await AdminClient.resolve(flags.registry);
  await client.request("DELETE", `${collection}/${encodeURIComponent(name)}`);
  process.stdout.write(`${collection === "users" ? "user" : "token"} ${name} deleted\n`);
}

function grantsText(grants: Grant[]): string {
  return grants.map((g) => `${g.repositories}=${g.actions.join(",")}`).join(" ");
}

function print<T>(
  format: string,
  rows: T[],
  header: string[],
  columns: (row: T) => string[],
): void {
  if (format === "json") {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return;
  }
  if (format !== "table") fail(`unknown output format ${format}: table or json`);
  const lines = [header, ...rows.map(columns)];
  const widths = header.map((_, i) => Math.max(...lines.map((line) => (line[i] ?? "").length)));
  for (const line of lines) {
    const text = line.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join("  ");
    process.stdout.write(`${text.trimEnd()}\n`);
  }
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function parseGrants(specs: string[]): { repositories: string; actions: string[] }[] {
  return specs.map((spec) => {
    const at = spec.lastIndexOf("=");
    const actions = spec
      .slice(at + 1)
      .split(",")
      .filter(Boolean);
    if (
      at <= 0 ||
      actions.some((a) => !["pull", "push", "delete"].includes(a)) ||
      actions.length === 0
    ) {
      fail(`bad --grant ${spec}: expected <pattern>=pull,push,delete`);
    }
    return { repositories: spec.slice(0, at), actions };
  });
}

async function upsert(
  file: string,
  list: "users" | "tokens",
  entry: Record<string, unknown>,
): Promise<void> {
  const document = parseDocument(await readFile(file, "utf8").catch(() => ""));
  const existing = (document.getIn(["auth", list]) as { toJSON(): unknown } | undefined)?.toJSON();
  const entries = (Array.isArray(existing) ? existing : []).filter(
    (e: { name?: unknown }) => e.name !== entry.name,
  );
  document.setIn(["auth", list], [...entries, entry]);
  await writeAtomically(file, document.toString());
}

async function remove(file: string, list: "users" | "tokens", name: string): Promise<void> {
  const document = parseDocument(await readFile(file, "utf8"));
  const existing = (document.getIn(["auth", list]) as { toJSON(): unknown } | undefined)?.toJSON();
  const entries = (Array.isArray(existing) ? existing : []).filter(
    (e: { name?: unknown }) => e.name !== name,
  );
  document.setIn(["auth", list], entries);
  await writeAtomically(file, document.toString());
  process.stdout.write(`${list === "users" ? "user" : "token"} ${name} removed from ${file}\n`);
}

async function writeAtomically(file: string, text: string): Promise<void> {
  await writeFile(`${file}.tmp`, text, { mode: 0o600 });
  await rename(`${file}.tmp`, file);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function fail(message: string): never {
  process.stderr.write(`meridian: ${message}\n`);
  process.exit(2);
}
