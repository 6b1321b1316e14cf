// Meridian's processes run from one bundled ES module built from src/ at start (esbuild
// takes a few tens of milliseconds), not through a TypeScript loader: Node 20 runs loader
// hooks on a thread of their own, which cost every replica about 38 MiB for nothing. The
// bundle is named after its content, so an unchanged tree reuses it and an edited one is
// rebuilt: it is never stale. Packages stay external and resolve from node_modules.
import { createHash } from "node:crypto";
import { mkdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build, stop } from "esbuild";

const root = fileURLToPath(new URL("../", import.meta.url));
const entry = join(root, "src", "cli", "meridian.ts");
// Inside the project's node_modules, so that bare imports in the bundle resolve there.
const cacheDir = join(root, "node_modules", ".cache", "meridian");

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
  try {
    return await writeBundle();
  } finally {
    // esbuild's service process would otherwise live as long as this one.
    await stop();
  }
}

async function writeBundle() {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    packages: "external",
    write: false,
    sourcemap: "external",
    outdir: cacheDir,
    logLevel: "silent",
    plugins: [keepModuleUrls],
  });
  const code = result.outputFiles.find((file) => file.path.endsWith(".js"));
  const map = result.outputFiles.find((file) => file.path.endsWith(".js.map"));
  if (!code) throw new Error("esbuild produced no bundle");
  const hash = createHash("sha256").update(code.contents).digest("hex").slice(0, 16);
  const path = join(cacheDir, `meridian-${hash}.mjs`);
  if (!(await exists(path))) {
    await mkdir(cacheDir, { recursive: true });
    // Processes starting together may build the same bundle: each renames its own copy.
    const temp = `${path}.${process.pid}.tmp`;
    // The map is read only with --enable-source-maps (NODE_OPTIONS), for readable stacks.
    if (map) await writeFile(`${path}.map`, map.contents);
    const mapLink = map ? `//# sourceMappingURL=meridian-${hash}.mjs.map\n` : "";
    await writeFile(temp, Buffer.concat([code.contents, Buffer.from(`\n${mapLink}`)]));
    await rename(temp, path);
  }
  return path;
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
