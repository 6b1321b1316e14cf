// Bundles the portal's front end (portal/src/main.tsx) and writes the files to stdout as
// JSON, `[{ "name": "app.js", "base64": "..." }, ...]`. Run by portal-build.ts as a child
// process, so that the replica serving the portal never loads esbuild, whose code would
// stay in its memory.
import { fileURLToPath } from "node:url";
import { build, stop } from "esbuild";

const sourceDir = fileURLToPath(new URL("../../portal/", import.meta.url));

try {
  const result = await build({
    entryPoints: [`${sourceDir}src/main.tsx`],
    bundle: true,
    minify: true,
    format: "esm",
    target: "es2020",
    platform: "browser",
    jsx: "automatic",
    jsxImportSource: "preact",
    write: false,
    outdir: "/portal-out",
    entryNames: "app",
    logLevel: "silent",
    legalComments: "none",
  });
  const files = result.outputFiles.map((file) => ({
    name: file.path.slice(file.path.lastIndexOf("/") + 1),
    base64: Buffer.from(file.contents).toString("base64"),
  }));
  process.stdout.write(JSON.stringify(files));
} catch (error) {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
} finally {
  await stop();
}
