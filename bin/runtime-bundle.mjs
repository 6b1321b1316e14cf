// Meridian's processes run from one bundled ES module built from src/ (esbuild takes a few
// tens of milliseconds), not through a TypeScript loader: Node 20 runs loader hooks on a
// thread of their own, which cost every replica about 38 MiB for nothing. The bundle is
// named after its inputs (every file of src/ and bin/, tsconfig.json, esbuild's
// version and where the tree is), so an unchanged tree reuses it and an edited one is
// rebuilt: it is never stale. The build runs in a child process (build-runtime-bundle.mjs):
// a replica started as `meridian serve` never loads esbuild, whose code and service stay
// with a process once loaded (about 12 MiB of a replica's resident memory). Packages stay
// external and resolve from node_modules. A module imported with `await import()` becomes
// a chunk of its own, loaded only when used: a replica without object storage never loads
// the cloud SDKs.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const root = fileURLToPath(new URL("../", import.meta.url));
const builder = fileURLToPath(new URL("./build-runtime-bundle.mjs", import.meta.url));
// Inside the project's node_modules, so that bare imports in the bundle resolve there.
const cacheDir = join(root, "node_modules", ".cache", "meridian");

/** @type {Promise<string> | undefined} */
let built;

/**
 * The path of the bundled CLI for the current source tree, built once per process.
 * @returns {Promise<string>}
 */
export function runtimeBundle() {
  built ??= findOrBuild();
  return built;
}

async function findOrBuild() {
  const dir = join(cacheDir, `bundle-${await inputsDigest()}`);
  const bundle = join(dir, "meridian.mjs");
  if (existsSync(bundle)) return bundle;
  try {
    await promisify(execFile)(process.execPath, [builder, dir], { maxBuffer: 16 << 20 });
  } catch (error) {
    // esbuild's messages joined into the one line an error of the CLI gets.
    const stderr = /** @type {{ stderr?: string }} */ (error).stderr
      ?.trim()
      .replace(/\s*\n\s*/g, " ");
    throw new Error(`building the runtime bundle failed: ${stderr || String(error)}`);
  }
  return bundle;
}

/** What the bundle is built from, hashed: the same inputs give the same bundle. */
async function inputsDigest() {
  const digest = createHash("sha256").update(root);
  const esbuild = JSON.parse(
    await readFile(join(root, "node_modules", "esbuild", "package.json"), "utf8"),
  );
  digest.update(`esbuild ${esbuild.version}\0`);
  const files = [
    join(root, "tsconfig.json"),
    ...(await filesUnder(join(root, "src"))),
    ...(await filesUnder(join(root, "bin"))),
  ];
  // Read synchronously: this runs once, before anything else, and the whole digest of a
  // few hundred small files takes about 30 ms so, against about 80 ms through the thread
  // pool.
  for (const path of files) {
    const content = readFileSync(path);
    digest.update(`${relative(root, path)}\0${content.length}\0`).update(content);
  }
  return digest.digest("hex").slice(0, 16);
}

/**
 * Every file under `dir`, in code-unit order (not `localeCompare`: the same order on every
 * machine, and no locale data loaded).
 * @param {string} dir
 * @returns {Promise<string[]>}
 */
async function filesUnder(dir) {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath ?? entry.path, entry.name))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}
