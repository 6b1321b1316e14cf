// Scale-out figures (Meridian only): one region on 1, 2 and 3 nodes over a throwaway
// PostgreSQL and Azurite, behind nginx, and beside them the embedded default (SQLite and
// the filesystem, one process) behind the same nginx: manifest GET requests/s and
// small-image pushes/s through the balancer. The notes give the CPU of the nodes, of
// PostgreSQL (and Azurite) and of the client, to say which resource saturates. On a
// 2-core machine the curve flattens at once: the nodes, PostgreSQL, Azurite, nginx and
// the client share the same two cores.
import { execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BlobServiceClient } from "@azure/storage-blob";
import { freePorts } from "../test/support/cluster.ts";
import { type MeridianProcess, startMeridian } from "../test/support/meridian-process.ts";
import { startBalancer } from "../test/support/nginx-balancer.ts";
import { startAzurite } from "../test/support/object-store-servers.ts";
import { startPostgres } from "../test/support/postgres-server.ts";
import { makeSmallImage, ociManifestType, type SmallImage } from "./blob-data.ts";
import { withClientThread } from "./client-thread.ts";
import { checkErrors, percent } from "./figures.ts";
import { cpuSeconds } from "./host.ts";
import { runPool } from "./load.ts";
import { RegistryClient } from "./registry-client.ts";
import type { ReplicationContext, ReplicationScenario } from "./scenarios-replication.ts";

const nodeCounts = [1, 2, 3] as const;
type Setup = "sqlite" | `${(typeof nodeCounts)[number]}`;
const setups: readonly Setup[] = ["sqlite", ...nodeCounts.map((n) => `${n}` as const)];

function label(setup: Setup): string {
  return setup === "sqlite"
    ? "embedded (SQLite, filesystem)"
    : `${setup} node(s), PostgreSQL + Azurite`;
}

/** Pids whose command line matches `pattern` (PostgreSQL's and Azurite's processes). */
function pidsOf(pattern: string): number[] {
  try {
    return execFileSync("pgrep", ["-f", pattern], { encoding: "utf8" })
      .split("\n")
      .filter((line) => line.trim() !== "")
      .map(Number);
  } catch {
    return [];
  }
}

const cpuOf = (pids: readonly number[]) => pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);

export const scaleOut: ReplicationScenario = {
  id: "scale",
  figures: () =>
    setups.flatMap((setup) => [
      {
        id: `scale-get-${setup}`,
        label: `Manifest GET through nginx, c=32: ${label(setup)}`,
        unit: "req/s",
        better: "higher" as const,
        meridianOnly: true as const,
      },
      {
        id: `scale-push-${setup}`,
        label: `  small-image push through nginx, c=8`,
        unit: "images/s",
        better: "higher" as const,
        meridianOnly: true as const,
      },
    ]),
  async run(context) {
    const dir = await mkdtemp(join(tmpdir(), "meridian-bench-scale-"));
    const postgres = await startPostgres();
    const azurite = await startAzurite();
    try {
      for (const setup of setups) {
        await context.measure(`scale-get-${setup}`, () =>
          measureSetup(context, setup, { dir, postgresUrl: postgres.url, azurite }),
        );
      }
    } finally {
      await azurite.stop();
      await postgres.stop();
      await rm(dir, { recursive: true, force: true });
    }
  },
};

async function measureSetup(
  context: ReplicationContext,
  setup: Setup,
  env: { dir: string; postgresUrl: string; azurite: Awaited<ReturnType<typeof startAzurite>> },
): Promise<void> {
  const count = setup === "sqlite" ? 1 : Number(setup);
  const ports = await freePorts(count);
  const config = join(env.dir, `scale-${setup}.yaml`);
  const container = `scale-${setup}`;
  if (setup !== "sqlite") {
    await BlobServiceClient.fromConnectionString(env.azurite.connectionString)
      .getContainerClient(container)
      .create();
  }
  await writeFile(
    config,
    JSON.stringify(
      setup === "sqlite"
        ? {}
        : {
            storage: {
              metadata: { driver: "postgres", url: env.postgresUrl, schema: `scale_${setup}` },
              blobs: { driver: "azure", container },
            },
          },
    ),
  );
  const nodes: MeridianProcess[] = [];
  try {
    for (const [index, port] of ports.entries()) {
      nodes.push(
        await startMeridian({
          dataDir: join(env.dir, `${setup}-node-${index}`),
          args: ["--config", config, "--listen", `127.0.0.1:${port}`],
          env: env.azurite.env,
          timeoutMs: 60_000,
        }),
      );
    }
    const balancer = await startBalancer(ports.map((port) => `127.0.0.1:${port}`));
    try {
      await measureThrough(context, setup, balancer.url, nodes);
    } finally {
      await balancer.stop();
    }
  } finally {
    for (const node of nodes) await node.dispose();
  }
}

async function measureThrough(
  context: ReplicationContext,
  setup: Setup,
  url: string,
  nodes: readonly MeridianProcess[],
): Promise<void> {
  const repo = `bench/scale-${setup}`;
  const fixture = makeSmallImage();
  const client = new RegistryClient(url, context.config.smallConcurrency);
  const nodePids = nodes.map((node) => node.child.pid ?? 0);
  const stores = () => [...pidsOf("postgres"), ...pidsOf("azurite")];
  const sample = () => ({ at: performance.now(), nodes: cpuOf(nodePids), stores: cpuOf(stores()) });
  const usage = (before: ReturnType<typeof sample>) => {
    const after = sample();
    const seconds = (after.at - before.at) / 1000;
    return `CPU (% of one core): nodes ${percent(((after.nodes - before.nodes) / seconds) * 100)}, PostgreSQL + Azurite ${percent(((after.stores - before.stores) / seconds) * 100)}`;
  };
  try {
    await client.pushImage(repo, fixture, "latest");
    // Manifest GETs through the balancer, from the client thread (autocannon).
    const getStart = sample();
    const get = await withClientThread((thread) =>
      thread.load({
        origin: url,
        warmupMs: context.config.warmupSeconds * 1000,
        method: "GET",
        path: `/v2/${repo}/manifests/latest`,
        headers: { accept: ociManifestType },
        expectStatus: [200],
        concurrency: context.config.rpsConcurrency,
        durationMs: context.config.rpsSeconds * 1000,
        maxRequests: 10_000_000,
      }),
    );
    const getUsage = usage(getStart);
    context.log(`scale-get-${setup}: ${get.perSecond.toFixed(0)}/s`);
    context.report(`scale-get-${setup}`, get.perSecond, {
      warnings: checkErrors("manifest GETs", get.ok, get.errors, get.firstError),
      notes: [
        `${get.ok} in ${(get.elapsedMs / 1000).toFixed(1)} s; ${getUsage}; client load thread busy ${percent(get.clientUtilization * 100)}`,
      ],
    });
    // Small images, each config + 2 x 4 KiB layers + manifest, c=8.
    const images: SmallImage[] = Array.from({ length: context.config.smallImages }, () =>
      makeSmallImage(),
    );
    const pushStart = sample();
    const push = await runPool(
      {
        concurrency: context.config.smallConcurrency,
        total: images.length,
        durationMs: context.config.smallSeconds * 1000,
        maxFailures: 16,
      },
      async (index) => {
        await client.pushImage(repo, images[index] as SmallImage, `img-${index}`);
      },
    );
    const pushUsage = usage(pushStart);
    context.log(`scale-push-${setup}: ${push.perSecond.toFixed(0)} images/s`);
    context.report(`scale-push-${setup}`, push.perSecond, {
      warnings: checkErrors("image pushes", push.ok, push.failed, push.firstError),
      notes: [
        `${push.ok} images in ${(push.elapsedMs / 1000).toFixed(1)} s; ${pushUsage}; client main thread busy ${percent(push.clientUtilization * 100)}`,
      ],
    });
  } finally {
    client.close();
  }
}
