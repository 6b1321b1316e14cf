// `meridian user add|remove` and `meridian token add|remove`: users (with a password) and
// repository-scoped tokens (with a generated secret, shown once) in the configuration
// file. Only slow hashes are written; the file's comments and layout are kept.
import { randomBytes } from "node:crypto";
import { readFile, rename, writeFile } from "node:fs/promises";
import type { Command } from "commander";
import { parseDocument } from "yaml";
import { hashSecret } from "../auth/password-hash.ts";

interface GrantFlags {
  config: string;
  grant: string[];
}

export function registerUserCommands(program: Command): void {
  const user = program
    .command("user")
    .description("manage users (passwords stored as scrypt hashes)");
  user
    .command("add <name>")
    .description("add or replace a user; the password is read from standard input")
    .option("-c, --config <file>", "configuration file", "meridian.yaml")
    .option("--admin", "admin role: every repository and the admin API")
    .option(
      "--grant <pattern=actions...>",
      "e.g. 'team/**=pull,push,delete' (repeatable)",
      collect,
      [],
    )
    .action(async (name: string, flags: GrantFlags & { admin?: boolean }) => {
      const password = (await readStdin()).replace(/\r?\n$/, "");
      if (password.length < 8) fail("the password must have at least 8 characters");
      await upsert(flags.config, "users", {
        name,
        passwordHash: await hashSecret(password),
        admin: flags.admin ?? false,
        permissions: parseGrants(flags.grant),
      });
      process.stdout.write(`user ${name} saved in ${flags.config}\n`);
    });
  user
    .command("remove <name>")
    .option("-c, --config <file>", "configuration file", "meridian.yaml")
    .action(async (name: string, flags: { config: string }) => remove(flags.config, "users", name));

  const token = program.command("token").description("manage repository-scoped tokens");
  token
    .command("add <name>")
    .description("add a token; its secret is printed once")
    .option("-c, --config <file>", "configuration file", "meridian.yaml")
    .option(
      "--grant <pattern=actions...>",
      "e.g. 'app/*=pull' (repeatable, at least one)",
      collect,
      [],
    )
    .action(async (name: string, flags: GrantFlags) => {
      const grants = parseGrants(flags.grant);
      if (grants.length === 0) fail("a token needs at least one --grant");
      const secret = randomBytes(24).toString("base64url");
      await upsert(flags.config, "tokens", {
        name,
        secretHash: await hashSecret(secret),
        permissions: grants,
      });
      process.stdout.write(
        `token ${name} saved in ${flags.config}; its secret (shown once):\n${secret}\n`,
      );
    });
  token
    .command("remove <name>")
    .option("-c, --config <file>", "configuration file", "meridian.yaml")
    .action(async (name: string, flags: { config: string }) =>
      remove(flags.config, "tokens", name),
    );
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
