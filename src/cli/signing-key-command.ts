// `meridian signing-key list|rotate`: the keys that sign bearer tokens. `rotate` makes a
// new key sign every new token; tokens signed before stay valid until they expire.
import type { Command } from "commander";
import { AdminClient } from "./admin-client.ts";

export function registerSigningKeyCommand(program: Command): void {
  const keys = program.command("signing-key").description("the token signing keys");
  keys
    .command("list")
    .description("list the signing keys (never their material)")
    .option("--registry <endpoint>", "any replica of the registry (env MERIDIAN_REGISTRY)")
    .action(async (flags: { registry?: string }) => {
      const client = await AdminClient.resolve(flags.registry);
      const listed = (await client.request("GET", "signing-keys")) as {
        kid: string;
        createdAt: string | null;
        current: boolean;
      }[];
      const lines = listed.map(
        (k) =>
          `${k.kid.padEnd(20)} ${(k.createdAt ?? "(auth.signingKey)").padEnd(26)} ${k.current ? "current" : ""}`,
      );
      process.stdout.write(
        `${[`${"KID".padEnd(20)} ${"CREATED".padEnd(26)} STATE`, ...lines].join("\n")}\n`,
      );
    });
  keys
    .command("rotate")
    .description("sign new tokens with a new key")
    .option("--registry <endpoint>", "any replica of the registry (env MERIDIAN_REGISTRY)")
    .action(async (flags: { registry?: string }) => {
      const client = await AdminClient.resolve(flags.registry);
      const made = (await client.request("POST", "signing-keys")) as { kid: string };
      process.stdout.write(`new tokens are signed with ${made.kid}\n`);
    });
}
