#!/usr/bin/env -S node --max-semi-space-size=1
// Entry point of the `meridian` command: runs the CLI from the bundle of src/ that
// runtime-bundle.mjs builds (or finds already built for this very tree). The small young
// generation is the replicas' (src/cluster/replica-process.ts says why).
import { pathToFileURL } from "node:url";
import { runtimeBundle } from "./runtime-bundle.mjs";

await import(pathToFileURL(await runtimeBundle()).href);
