// The `meridian` command line.
import { Command } from "commander";
import { registerGcCommands } from "./gc-command.ts";
import { registerLoginCommand } from "./login-command.ts";
import { registerReplicationCommand } from "./replication-command.ts";
import { registerRetentionCommand } from "./retention-command.ts";
import { registerServeCommand } from "./serve-command.ts";
import { describeFailure } from "./unreachable-reason.ts";
import { registerUpCommand } from "./up-command.ts";
import { registerUserCommands } from "./user-command.ts";

const program = new Command()
  .name("meridian")
  .description("Meridian: a self-hosted, geo-replicated OCI container registry")
  .version("0.1.0");

registerServeCommand(program);
registerUpCommand(program);
registerReplicationCommand(program);
registerUserCommands(program);
registerLoginCommand(program);
registerGcCommands(program);
registerRetentionCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  // A command that fails says why in one line, never with a stack trace.
  process.stderr.write(`meridian: ${describeFailure(error)}\n`);
  process.exitCode = 1;
}
