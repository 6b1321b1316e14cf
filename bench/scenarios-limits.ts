// The machine's limits that the push and pull figures are read against, measured with the
// same clients: a bare node:http server in a process of its own that takes a monolithic
// upload (POST, then PUT ?digest= with the body) hashing it with SHA-256 and storing
// nothing, and serves one blob from memory (one `end` of a Buffer). Meridian's push and
// pull are reported as fractions of these in the README; no registry can beat them here.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { performance } from "node:perf_hooks";
import { LargeBlobs } from "./blob-data.ts";
import { withClientThread } from "./client-thread.ts";
import { median, megabytesPerSecond } from "./figures.ts";
import { RegistryClient } from "./registry-client.ts";
import type { ReplicationScenario } from "./scenarios-replication.ts";

const serverSource = `
const http = require("node:http");
const { createHash, randomBytes } = require("node:crypto");
const blob = Buffer.alloc(Number(process.argv[1]));
for (let at = 0; at < blob.length; at += 1 << 24) randomBytes(Math.min(1 << 24, blob.length - at)).copy(blob, at);
const server = http.createServer((req, res) => {
  if (req.method === "POST") {
    res.writeHead(202, { Location: "/v2/limits/blobs/uploads/1", "Content-Length": 0 });
    return res.end();
  }
  if (req.method === "PUT") {
    const hash = createHash("sha256");
    req.on("data", (chunk) => hash.update(chunk));
    req.on("end", () => {
      const digest = "sha256:" + hash.digest("hex");
      const wanted = new URL(req.url, "http://x").searchParams.get("digest");
      res.writeHead(digest === wanted ? 201 : 400, { "Content-Length": 0 });
      res.end();
    });
    return;
  }
  res.writeHead(200, { "Content-Length": blob.length, "Content-Type": "application/octet-stream" });
  res.end(blob);
});
server.listen(0, "127.0.0.1", () => process.stdout.write(server.address().port + "\\n"));
`;

async function withLimitServer<T>(bytes: number, work: (url: string) => Promise<T>): Promise<T> {
  const child = spawn(process.execPath, ["-e", serverSource, String(bytes)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  try {
    const [line] = (await once(child.stdout, "data")) as [Buffer];
    return await work(`http://127.0.0.1:${line.toString().trim()}`);
  } finally {
    child.kill("SIGKILL");
  }
}

export const machineLimits: ReplicationScenario = {
  id: "limits",
  figures: (config) => [
    {
      id: "limit-upload",
      label: `Machine limit: ${config.blobMiB} MiB upload + SHA-256, bare Node server`,
      unit: "MB/s",
      better: "higher",
      meridianOnly: true,
    },
    {
      id: "limit-pull-c1",
      label: `Machine limit: ${config.blobMiB} MiB served from memory by Node, 1 GET`,
      unit: "MB/s",
      better: "higher",
      meridianOnly: true,
    },
    {
      id: "limit-pull-c4",
      label: "  same, 4 parallel GETs",
      unit: "MB/s",
      better: "higher",
      meridianOnly: true,
    },
  ],
  async run(context) {
    const bytes = context.config.blobMiB * 1024 * 1024;
    const blobs = new LargeBlobs(bytes);
    await withLimitServer(bytes, async (url) => {
      const client = new RegistryClient(url, 2);
      try {
        const samples: number[] = [];
        for (let round = 0; round < context.config.repeat; round++) {
          const blob = blobs.variant(round);
          const start = performance.now();
          await client.pushMonolithic("limits", blob);
          samples.push(megabytesPerSecond(blob.size, performance.now() - start));
        }
        context.log(`limit-upload: ${median(samples).toFixed(0)} MB/s`);
        context.report("limit-upload", median(samples), { samples });
      } finally {
        client.close();
      }
      await withClientThread(async (thread) => {
        for (const parallel of [1, 4]) {
          const samples: number[] = [];
          for (let round = 0; round < context.config.repeat; round++) {
            const job = { url: `${url}/blob`, expectBytes: bytes, followRedirect: false, parallel };
            const { ms } = await thread.pull(job);
            samples.push(megabytesPerSecond(bytes * parallel, ms));
          }
          context.log(`limit-pull-c${parallel}: ${median(samples).toFixed(0)} MB/s`);
          context.report(`limit-pull-c${parallel}`, median(samples), { samples });
        }
      });
    });
  },
};
