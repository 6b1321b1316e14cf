// `meridian login <endpoint> [--username NAME]`: checks the credentials against the
// registry's admin API (the password from standard input) and stores them for the admin
// commands (login-store.ts), as `docker login` does for pushes and pulls.
import type { Command } from "commander";
import { AdminClient } from "./admin-client.ts";
import { loginFile, saveLogin } from "./login-store.ts";

export function registerLoginCommand(program: Command): void {
  program
    .command("login <endpoint>")
    .description("store admin credentials for a registry; the password is read from standard input")
    .option("-u, --username <name>", "the admin user", "admin")
    .action(async (endpoint: string, flags: { username: string }) => {
      const password = (await readStdin()).replace(/\r?\n$/, "");
      if (password === "") throw new Error("no password on standard input");
      process.env.MERIDIAN_USERNAME = flags.username;
      process.env.MERIDIAN_PASSWORD = password;
      const client = await AdminClient.resolve(endpoint);
      // An admin call proves the credentials (and the role) before anything is stored.
      await client.request("GET", "users");
      await saveLogin(client.endpoint, flags.username, password);
      process.stdout.write(
        `logged in to ${client.endpoint} as ${flags.username} (${loginFile()})\n`,
      );
    });
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}
