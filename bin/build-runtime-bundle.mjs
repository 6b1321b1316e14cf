// Builds the runtime bundle of src/ into the folder given as the only argument (see
// runtime-bundle.mjs, which runs this as a child process). Processes starting together may
// build the same bundle: each writes a folder of its own and renames it into place; a
// folder already there holds the same bundle.
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build, stop } from "esbuild";

const root = fileURLToPath(new URL("../", import.meta.url));
const entry = join(root, "src", "cli", "meridian.ts");
/** Where esbuild is told the files go (nothing is written there: paths only). */
const staging = join(root, "node_modules", ".cache", "meridian", "staging");

/** Spelt in pieces so that this file keeps its own occurrence intact. */
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

const dir = process.argv[2];
if (!dir) {
  process.stderr.write("usage: build-runtime-bundle.mjs <folder>\n");
  process.exit(2);
}
// A tree that does not build (an edit with a syntax error) gets esbuild's messages, one
// per line, instead of a stack.
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
}).catch((error) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
if (!result.outputFiles.some((file) => file.path === join(staging, "meridian.mjs"))) {
  throw new Error("esbuild produced no bundle");
}
const temp = `${dir}.${process.pid}.tmp`;
await rm(temp, { recursive: true, force: true });
for (const file of result.outputFiles) {
  const path = join(temp, relative(staging, file.path));
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, file.contents);
}
await rename(temp, dir).catch(async (error) => {
  await rm(temp, { recursive: true, force: true });
  if (!existsSync(dir)) throw error;
});
// esbuild's service process would otherwise keep this one running.
await stop();
