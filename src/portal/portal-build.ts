// Builds the portal's front end (portal/ at the repository root) with esbuild, in memory,
// the first time a replica serves it: no build command to remember, never stale, and the
// few hundred milliseconds it takes are spent only by a replica someone opens the portal
// on. Everything is bundled (Preact, d3-geo, the world-atlas map, topojson-client): the
// page loads nothing from anywhere else. Each file is kept with its gzip form and an ETag.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

export interface PortalFile {
  body: Buffer;
  gzip: Buffer;
  contentType: string;
  etag: string;
}

/** The built portal: file name (as under /portal/) -> its content. */
export type PortalBundle = ReadonlyMap<string, PortalFile>;

const sourceDir = fileURLToPath(new URL("../../portal/", import.meta.url));

const contentTypes: Record<string, string> = {
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".html": "text/html; charset=utf-8",
  ".svg": "image/svg+xml",
};

let built: Promise<PortalBundle> | undefined;

/** The portal's files, built once per process (a failed build is tried again next time). */
export function portalBundle(): Promise<PortalBundle> {
  built ??= buildPortal().catch((error: unknown) => {
    built = undefined;
    throw error;
  });
  return built;
}

export async function buildPortal(): Promise<PortalBundle> {
  const { build, stop } = await import("esbuild");
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
    const files = new Map<string, PortalFile>();
    for (const output of result.outputFiles) {
      const name = basename(output.path);
      files.set(`assets/${name}`, portalFile(name, Buffer.from(output.contents)));
    }
    const html = await readFile(`${sourceDir}index.html`);
    files.set("index.html", portalFile("index.html", html));
    return files;
  } finally {
    // esbuild's service process would otherwise live as long as the replica.
    await stop();
  }
}

function portalFile(name: string, body: Buffer): PortalFile {
  const extension = name.slice(name.lastIndexOf("."));
  return {
    body,
    gzip: gzipSync(body, { level: 9 }),
    contentType: contentTypes[extension] ?? "application/octet-stream",
    etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`,
  };
}
