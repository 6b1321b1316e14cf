#!/usr/bin/env -S node --max-semi-space-size=1
// Entry point of the `meridian` command: runs the CLI from the bundle of src/ that
// runtime-bundle.mjs builds (or finds already built for this very tree). The small young
// generation is the replicas' (src/cluster/replica-process.ts says why).
import { pathToFileURL } from "node:url";
import { runtimeBundle } from "./runtime-bundle.mjs";

const bundle = await runtimeBundle().catch((error) => {
  // One line per message and an exit code, as every other error of the CLI.
  process.stderr.write(`meridian: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
await import(pathToFileURL(bundle).href);
