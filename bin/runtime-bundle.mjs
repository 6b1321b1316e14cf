// Meridian's processes run from one bundled ES module built from src/ at start (esbuild
// takes a few tens of milliseconds), not through a TypeScript loader: Node 20 runs loader
// hooks on a thread of their own, which cost every replica about 38 MiB for nothing. The
// bundle is named after its content, so an unchanged tree reuses it and an edited one is
// rebuilt: it is never stale. Packages stay external and resolve from node_modules. A
// module imported with `await import()` becomes a chunk of its own, loaded only when
// used: a replica without object storage never loads the cloud SDKs.
import { createHash } from "node:crypto";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = fileURLToPath(new URL("../", import.meta.url));
const entry = join(root, "src", "cli", "meridian.ts");
// Inside the project's node_modules, so that bare imports in the bundle resolve there.
const cacheDir = join(root, "node_modules", ".cache", "meridian");
/** Where esbuild is told the files go (nothing is written there: paths only). */
const staging = join(cacheDir, "staging");

/** @type {Promise<string> | undefined} */
let built;

/**
 * The path of the bundled CLI for the current source tree, built once per process.
 * @returns {Promise<string>}
 */
export function runtimeBundle() {
  built ??= buildBundle();
  return built;
}

async function buildBundle() {
  // Loaded here, not with the module: every replica process holds this module (it starts
  // others), and esbuild costs about 5 MiB of memory once loaded.
  const { build, stop } = await import("esbuild");
  try {
    return await writeBundle(build);
  } finally {
    // esbuild's service process would otherwise live as long as this one.
    await stop();
  }
}

/** @param {typeof import("esbuild").build} build */
async function writeBundle(build) {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    packages: "external",
    write: false,
    // The map is read only with --enable-source-maps (NODE_OPTIONS), for readable stacks.
    sourcemap: "linked",
    splitting: true,
    outdir: staging,
    entryNames: "meridian",
    chunkNames: "chunk-[hash]",
    outExtension: { ".js": ".mjs" },
    logLevel: "silent",
    plugins: [keepModuleUrls],
  });
  if (!result.outputFiles.some((file) => file.path === join(staging, "meridian.mjs"))) {
    throw new Error("esbuild produced no bundle");
  }
  const digest = createHash("sha256");
  const files = [...result.outputFiles].sort((a, b) => a.path.localeCompare(b.path));
  for (const file of files) digest.update(relative(staging, file.path)).update(file.contents);
  const dir = join(cacheDir, `bundle-${digest.digest("hex").slice(0, 16)}`);
  if (!(await exists(dir))) {
    // Processes starting together may build the same bundle: each writes its own folder
    // and renames it into place; a folder already there is the same bundle.
    const temp = `${dir}.${process.pid}.tmp`;
    await rm(temp, { recursive: true, force: true });
    for (const file of files) {
      const path = join(temp, relative(staging, file.path));
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, file.contents);
    }
    await rename(temp, dir).catch(async (error) => {
      await rm(temp, { recursive: true, force: true });
      if (!(await exists(dir))) throw error;
    });
  }
  return join(dir, "meridian.mjs");
}

/** Spelt in pieces so that this file, bundled too, keeps its own occurrence intact. */
const moduleUrlExpression = ["import", "meta", "url"].join(".");

/**
 * Each module keeps its own `import.meta.url` (the source file's), so that files it
 * locates beside itself (a worker script, say) are found in src/ as when run from source.
 * @type {import("esbuild").Plugin}
 */
const keepModuleUrls = {
  name: "keep-module-urls",
  setup(pluginBuild) {
    pluginBuild.onLoad({ filter: /\.(ts|mjs)$/ }, async (args) => {
      const text = await readFile(args.path, "utf8");
      const url = JSON.stringify(pathToFileURL(args.path).href);
      return {
        contents: text.replaceAll(moduleUrlExpression, url),
        loader: args.path.endsWith(".ts") ? "ts" : "js",
        resolveDir: dirname(args.path),
      };
    });
  },
};

/** @param {string} path */
async function exists(path) {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
