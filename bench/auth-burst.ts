// How much a burst of wrong Basic passwords slows a large push: one real replica with a
// user, a 256 MiB monolithic push timed alone and while 50 clients keep sending wrong
// passwords (closed loop: each sends its next attempt when the last is answered). scrypt
// ran on the libuv thread pool that blob writes use; this measures what that costs.
//
//   node --import tsx bench/auth-burst.ts      (BENCH_BLOB_MIB, BENCH_REPEAT, BENCH_BURST)
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { stringify } from "yaml";
import { hashSecret } from "../src/auth/password-hash.ts";
import { startMeridian } from "../test/support/meridian-process.ts";
import { type BlobSource, LargeBlobs } from "./blob-data.ts";
import { median } from "./figures.ts";
import { flushWriteback } from "./host.ts";

const blobMiB = Number(process.env.BENCH_BLOB_MIB ?? 256);
const repeat = Number(process.env.BENCH_REPEAT ?? 3);
const burstClients = Number(process.env.BENCH_BURST ?? 50);
const password = "bench-password-1";
const basic = (secret: string) => `Basic ${Buffer.from(`bench:${secret}`).toString("base64")}`;

/** One monolithic POST ?digest= of the whole blob; resolves with its milliseconds. */
function push(base: string, blob: BlobSource): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(`${base}/v2/bench/burst/blobs/uploads/?digest=${blob.digest}`, {
      method: "POST",
      agent: false,
      headers: {
        Authorization: basic(password),
        "Content-Type": "application/octet-stream",
        "Content-Length": String(blob.size),
      },
    });
    req.on("error", reject);
    req.on("response", (res) => {
      res.resume();
      res.on("end", () =>
        res.statusCode === 201
          ? resolve(performance.now() - started)
          : reject(new Error(`push answered ${res.statusCode}`)),
      );
    });
    const slices = blob.slices(0, blob.size, 4 * 1024 * 1024)[Symbol.iterator]();
    const pump = (): void => {
      for (let next = slices.next(); !next.done; next = slices.next()) {
        if (!req.write(next.value)) {
          req.once("drain", pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}

/** `clients` loops of wrong-password GET /v2/ until stopped; counts answers by status. */
function burst(base: string, clients: number): { stop(): Promise<Map<number, number>> } {
  const agent = new Agent({ keepAlive: true, maxSockets: clients });
  const statuses = new Map<number, number>();
  let running = true;
  let attempt = 0;
  const one = () =>
    new Promise<void>((resolve) => {
      attempt += 1;
      const req = request(`${base}/v2/`, {
        agent,
        headers: { Authorization: basic(`wrong-${attempt % 1000}`) },
      });
      req.on("error", () => resolve());
      req.on("response", (res) => {
        statuses.set(res.statusCode ?? 0, (statuses.get(res.statusCode ?? 0) ?? 0) + 1);
        res.resume();
        res.on("end", () => resolve());
      });
      req.end();
    });
  const loops = Array.from({ length: clients }, async () => {
    while (running) await one();
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      agent.destroy();
      return statuses;
    },
  };
}

const dir = await mkdtemp(join(tmpdir(), "meridian-auth-burst-"));
const configFile = join(dir, "meridian.yaml");
await writeFile(
  configFile,
  stringify({
    auth: {
      signingKey: "bench-signing-key-0123456789abcdef0123",
      users: [
        {
          name: "bench",
          passwordHash: await hashSecret(password),
          permissions: [{ repositories: "**", actions: ["pull", "push"] }],
        },
      ],
    },
  }),
);
const server = await startMeridian({ args: ["--config", configFile], timeoutMs: 60_000 });
const blobs = new LargeBlobs(blobMiB * 1024 * 1024);
const quiet: number[] = [];
const loaded: number[] = [];
try {
  await push(server.url, blobs.variant(999)); // warm-up: files, page cache, JIT
  for (let run = 0; run < repeat; run += 1) {
    flushWriteback();
    quiet.push(await push(server.url, blobs.variant(run * 2)));
    flushWriteback();
    const load = burst(server.url, burstClients);
    loaded.push(await push(server.url, blobs.variant(run * 2 + 1)));
    const statuses = await load.stop();
    const counted = [...statuses].map(([status, n]) => `${n}x${status}`).join(" ");
    console.log(
      `run ${run + 1}: alone ${quiet.at(-1)?.toFixed(0)} ms, with ${burstClients} wrong-password clients ${loaded.at(-1)?.toFixed(0)} ms (${counted})`,
    );
  }
} finally {
  await server.dispose();
  await rm(dir, { recursive: true, force: true });
}
const mbps = (ms: number) => (blobMiB * 1024 * 1024) / 1e6 / (ms / 1000);
console.log(
  `median of ${repeat}: ${blobMiB} MiB push alone ${median(quiet).toFixed(0)} ms (${mbps(median(quiet)).toFixed(0)} MB/s), ` +
    `under the burst ${median(loaded).toFixed(0)} ms (${mbps(median(loaded)).toFixed(0)} MB/s): ` +
    `slowdown ${(median(loaded) / median(quiet)).toFixed(2)}x`,
);
