// Builds the portal's front end (portal/ at the repository root) with esbuild, in memory,
// the first time a replica serves it: no build command to remember, never stale, and the
// few hundred milliseconds it takes are spent only by a replica someone opens the portal
// on. esbuild runs in a child process (build-portal-assets.mjs): loaded into the replica,
// its code stayed there, and the first portal request grew the replica's RSS by 8.5 MiB
// (3.3 MiB now, the built files and their gzip forms included). Everything is bundled
// (Preact, d3-geo, the world-atlas map, topojson-client): the page loads nothing from
// anywhere else. Each file is kept with its gzip form and an ETag.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
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
/** The esbuild run, in a process of its own (see build-portal-assets.mjs). */
const builder = fileURLToPath(new URL("./build-portal-assets.mjs", import.meta.url));
const run = promisify(execFile);

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
  const { stdout } = await run(process.execPath, [builder], { maxBuffer: 64 << 20 }).catch(
    (error: { stderr?: string }) => {
      throw new Error(`building the portal failed: ${error.stderr?.trim() || String(error)}`);
    },
  );
  const files = new Map<string, PortalFile>();
  for (const output of JSON.parse(stdout) as { name: string; base64: string }[]) {
    files.set(
      `assets/${output.name}`,
      portalFile(output.name, Buffer.from(output.base64, "base64")),
    );
  }
  const html = await readFile(`${sourceDir}index.html`);
  files.set("index.html", portalFile("index.html", html));
  return files;
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
