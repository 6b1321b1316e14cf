// The `meridian` command line.
import { Command } from "commander";
import { describeFailure } from "../control/unreachable-reason.ts";
import { registerApplyCommand } from "./apply-command.ts";
import { registerGcCommands } from "./gc-command.ts";
import { registerImportCommand } from "./import-command.ts";
import { registerLoginCommand } from "./login-command.ts";
import { registerReplicationCommand } from "./replication-command.ts";
import { registerRepositoryCommand } from "./repository-command.ts";
import { registerRetentionCommand } from "./retention-command.ts";
import { registerServeCommand } from "./serve-command.ts";
import { registerSettingsCommand } from "./settings-command.ts";
import { registerSigningKeyCommand } from "./signing-key-command.ts";
import { registerUpCommand } from "./up-command.ts";
import { registerUserCommands } from "./user-command.ts";
import { registerWebhookCommand } from "./webhook-command.ts";

const program = new Command()
  .name("meridian")
  .description("Meridian: a self-hosted, geo-replicated OCI container registry")
  .version("0.1.0")
  // Commander's own complaints (a missing option, an unknown command) read like ours.
  .configureOutput({
    outputError: (text, write) => write(`meridian: ${text.replace(/^error: /, "")}`),
  });

registerServeCommand(program);
registerApplyCommand(program);
registerUpCommand(program);
registerReplicationCommand(program);
registerRepositoryCommand(program);
registerUserCommands(program);
registerLoginCommand(program);
registerSigningKeyCommand(program);
registerSettingsCommand(program);
registerWebhookCommand(program);
registerImportCommand(program);
registerGcCommands(program);
registerRetentionCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  // A command that fails says why in one line, never with a stack trace.
  process.stderr.write(`meridian: ${describeFailure(error)}\n`);
  process.exitCode = 1;
}
