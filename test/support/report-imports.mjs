// Preloaded with `node --import` by tests that check which packages a process loads: every
// module specifier the process resolves is written to its stderr as `import: <specifier>`.
// Resolve hooks run on a thread of their own, so they hand each specifier over a port.
import { register } from "node:module";
import { MessageChannel } from "node:worker_threads";

const { port1, port2 } = new MessageChannel();
port1.on("message", (specifier) => process.stderr.write(`import: ${specifier}\n`));
port1.unref();
register("./report-imports-hooks.mjs", import.meta.url, {
  data: { port: port2 },
  transferList: [port2],
});
