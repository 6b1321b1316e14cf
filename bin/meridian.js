#!/usr/bin/env node
// Entry point of the `meridian` command: loads the TypeScript CLI through tsx so that
// the package runs from source without a build step.
import { register } from "tsx/esm/api";

register();
await import("../src/cli/meridian.ts");
