// Request-rate scenarios on small objects: small-image pushes, manifest GET by tag, blob HEAD,
// tag listing of a repository with thousands of tags (full and paginated), and
// cross-repository blob mounts.
import { performance } from "node:perf_hooks";
import { ociManifestType, type SmallImage } from "./blob-data.ts";
import { withClientThread } from "./client-thread.ts";
import {
  checkErrors,
  clientBoundWarning,
  cpuNote,
  median,
  percent,
  type Scenario,
  type ScenarioContext,
} from "./figures.ts";
import { withServerCpu } from "./host.ts";
import { type LoadSpec, runPool } from "./load.ts";
import { RegistryClient, RegistryError } from "./registry-client.ts";

function utilizationNote(utilization: number, thread: string): string {
  return `client ${thread} busy ${percent(utilization * 100)}`;
}

/** Runs a load in the client thread and reports its requests/s for `figureId`. */
async function measureRate(
  context: ScenarioContext,
  figureId: string,
  what: string,
  spec: Omit<LoadSpec, "origin" | "warmupMs">,
  extraWarnings: readonly string[] = [],
): Promise<void> {
  const { result, serverCpuPercent, clientCpuPercent } = await withClientThread((client) =>
    withServerCpu(context.target.pid, () =>
      client.load({
        origin: context.target.url,
        warmupMs: context.config.warmupSeconds * 1000,
        ...spec,
      }),
    ),
  );
  const warnings = [
    ...extraWarnings,
    ...checkErrors(what, result.ok, result.errors, result.firstError),
    ...clientBoundWarning(result.clientUtilization),
  ];
  context.log(`${figureId}: ${result.perSecond.toFixed(0)}/s`);
  context.report(figureId, result.perSecond, {
    warnings,
    notes: [
      `${result.ok} in ${(result.elapsedMs / 1000).toFixed(1)} s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms (autocannon: whole ms)`,
      `${cpuNote(serverCpuPercent, clientCpuPercent)}, ${utilizationNote(result.clientUtilization, "load thread")} (autocannon, ${result.clientCpuMicros.toFixed(1)} us of its CPU per request)`,
    ],
  });
}

const fixtureRepo = "bench/fixture";

/**
 * Small images pushed by `smallConcurrency` clients: with one request per blob
 * (`single`, POST ?digest=), or through upload sessions as docker and skopeo push
 * (`session`: POST, PATCH, PUT per blob).
 */
function smallPush(style: "single" | "session"): Scenario {
  const id = style === "single" ? "small-push" : "small-push-sessions";
  const how = style === "single" ? "" : " through upload sessions";
  return {
    id,
    figures: (config) => [
      {
        id,
        label: `Small image push${how} (cfg + 2x4 KiB layers + manifest), c=${config.smallConcurrency}`,
        unit: "images/s",
        better: "higher",
      },
    ],
    async run(context) {
      const repo = style === "single" ? "bench/small" : "bench/small-sessions";
      const { smallConcurrency, smallSeconds } = context.config;
      const images = style === "single" ? context.data.smallImages : context.data.sessionImages;
      const client = new RegistryClient(context.target.url, smallConcurrency);
      try {
        let singlePost = 0;
        let fallback = 0;
        const { result, serverCpuPercent, clientCpuPercent } = await withServerCpu(
          context.target.pid,
          () =>
            runPool(
              {
                concurrency: smallConcurrency,
                total: images.length,
                durationMs: smallSeconds * 1000,
                maxFailures: 16,
              },
              async (index) => {
                const counts = await client.pushImage(
                  repo,
                  images[index] as SmallImage,
                  `img-${index}`,
                  style,
                );
                singlePost += counts.singlePost;
                fallback += counts.fallback;
              },
            ),
        );
        const warnings = checkErrors("image pushes", result.ok, result.failed, result.firstError);
        const first = images[0];
        if (first) {
          const reply = await client.send("HEAD", `/v2/${repo}/manifests/img-0`, {
            headers: { accept: ociManifestType },
          });
          const digest = reply.headers["docker-content-digest"];
          if (reply.status !== 200 || (digest !== undefined && digest !== first.manifest.digest)) {
            warnings.push(
              `HEAD /v2/${repo}/manifests/img-0 -> HTTP ${reply.status}, Docker-Content-Digest ${digest}, expected 200 ${first.manifest.digest}`,
            );
          }
        }
        context.log(`${id}: ${result.perSecond.toFixed(0)} images/s`);
        const requests =
          style === "single"
            ? `single-request POST ?digest= answered 201 for ${singlePost} of ${singlePost + fallback} blobs${fallback > 0 ? " (202 otherwise: blob re-sent with PUT ?digest=)" : ""}`
            : "every blob sent as POST, PATCH, PUT ?digest= (10 requests per image)";
        context.report(id, result.perSecond, {
          warnings,
          notes: [
            `${result.ok} images in ${(result.elapsedMs / 1000).toFixed(1)} s`,
            requests,
            `${cpuNote(serverCpuPercent, clientCpuPercent)}, ${utilizationNote(result.clientUtilization, "main thread")}`,
          ],
        });
      } finally {
        client.close();
      }
    },
  };
}

export const smallImagePush = smallPush("single");
export const smallImagePushSessions = smallPush("session");

export const manifestGet: Scenario = {
  id: "manifest-get",
  figures: (config) => [
    {
      id: "manifest-get",
      label: `Manifest GET by tag, c=${config.rpsConcurrency}`,
      unit: "req/s",
      better: "higher",
    },
  ],
  async run(context) {
    const image = context.data.fixture;
    const path = `/v2/${fixtureRepo}/manifests/latest`;
    const client = new RegistryClient(context.target.url, 1);
    const warnings: string[] = [];
    try {
      await client.pushImage(fixtureRepo, image, "latest");
      warnings.push(...(await client.checkManifest(path, image)).problems);
    } finally {
      client.close();
    }
    await measureRate(
      context,
      "manifest-get",
      "manifest GETs",
      {
        method: "GET",
        path,
        headers: { accept: ociManifestType },
        expectStatus: [200],
        concurrency: context.config.rpsConcurrency,
        durationMs: context.config.rpsSeconds * 1000,
        maxRequests: 10_000_000,
      },
      warnings,
    );
  },
};

export const blobHead: Scenario = {
  id: "blob-head",
  figures: (config) => [
    {
      id: "blob-head",
      label: `Blob HEAD, c=${config.rpsConcurrency}`,
      unit: "req/s",
      better: "higher",
    },
  ],
  async run(context) {
    const image = context.data.fixture;
    const layer = image.layers[0];
    if (!layer) throw new Error("fixture image has no layer");
    const client = new RegistryClient(context.target.url, 1);
    const warnings: string[] = [];
    try {
      await client.pushImage(fixtureRepo, image, "latest");
      const reply = await client.headBlob(fixtureRepo, layer.digest);
      if (reply.headers["content-length"] !== String(layer.data.length)) {
        warnings.push(
          `HEAD /v2/${fixtureRepo}/blobs/${layer.digest} -> Content-Length ${reply.headers["content-length"]}, expected ${layer.data.length}`,
        );
      }
    } finally {
      client.close();
    }
    await measureRate(
      context,
      "blob-head",
      "blob HEADs",
      {
        method: "HEAD",
        path: `/v2/${fixtureRepo}/blobs/${layer.digest}`,
        expectStatus: [200],
        concurrency: context.config.rpsConcurrency,
        durationMs: context.config.rpsSeconds * 1000,
        maxRequests: 10_000_000,
      },
      warnings,
    );
  },
};

/** Largest tag-list body parsed. */
const listingBytes = 64 * 1024 * 1024;

function tagName(index: number): string {
  return `t${String(index).padStart(5, "0")}`;
}

function parseTags(request: string, reply: { status: number; body: Buffer }): string[] {
  try {
    const parsed = JSON.parse(reply.body.toString("utf8")) as { tags?: unknown };
    if (parsed.tags === null) return [];
    if (Array.isArray(parsed.tags) && parsed.tags.every((tag) => typeof tag === "string")) {
      return parsed.tags;
    }
  } catch {
    // Reported below.
  }
  throw new RegistryError(
    request,
    reply.status,
    reply.body.toString("utf8").slice(0, 300),
    "no tags array",
  );
}

function nextLink(link: string | string[] | undefined): string | undefined {
  const value = Array.isArray(link) ? link.join(", ") : link;
  return value ? /<([^>]+)>\s*;\s*rel="?next"?/.exec(value)?.[1] : undefined;
}

/** Repeats `once` until `seconds` have passed (at least 3, at most 1000 times); ms of each. */
async function repeatTimed(seconds: number, once: () => Promise<void>): Promise<number[]> {
  const samples: number[] = [];
  const stopAt = performance.now() + seconds * 1000;
  while (samples.length < 3 || (performance.now() < stopAt && samples.length < 1000)) {
    const start = performance.now();
    await once();
    samples.push(performance.now() - start);
  }
  return samples;
}

export const tagListing: Scenario = {
  id: "tags",
  figures: (config) => [
    {
      id: "tags-push",
      label: `Manifest PUT by tag (${config.tags} tags, 1 manifest), c=8`,
      unit: "req/s",
      better: "higher",
    },
    {
      id: "tags-list",
      label: `Tag list, ${config.tags} tags, one GET`,
      unit: "ms",
      better: "lower",
    },
    {
      id: "tags-page",
      label: `Tag list, ${config.tags} tags, walk n=${config.tagsPage} via Link`,
      unit: "ms",
      better: "lower",
    },
  ],
  async run(context) {
    const repo = "bench/tags";
    const { tags: tagCount, tagsPage, listSeconds } = context.config;
    const image = context.data.fixture;
    const expected = Array.from({ length: tagCount }, (_, index) => tagName(index));
    const client = new RegistryClient(context.target.url, 8);
    try {
      await client.pushImage(repo, image, tagName(0));
      await context.measure("tags-push", async () => {
        const { result, serverCpuPercent, clientCpuPercent } = await withServerCpu(
          context.target.pid,
          () =>
            runPool(
              { concurrency: 8, total: tagCount, durationMs: 600_000, maxFailures: 10 },
              (index) =>
                client
                  .putManifest(repo, tagName(index), image.manifest.data, ociManifestType)
                  .then(() => undefined),
            ),
        );
        context.report("tags-push", result.perSecond, {
          warnings: checkErrors("tag PUTs", result.ok, result.failed, result.firstError),
          notes: [
            `${cpuNote(serverCpuPercent, clientCpuPercent)}, ${utilizationNote(result.clientUtilization, "main thread")}`,
          ],
        });
      });

      const missingFrom = (listed: readonly string[]): string[] => {
        const seen = new Set(listed);
        const missing = expected.filter((tag) => !seen.has(tag));
        const problems: string[] = [];
        if (missing.length > 0) problems.push(`${missing.length} tags missing, e.g. ${missing[0]}`);
        if (seen.size !== listed.length)
          problems.push(`${listed.length - seen.size} duplicate tags`);
        return problems;
      };

      await context.measure("tags-list", async () => {
        const path = `/v2/${repo}/tags/list`;
        let bytes = 0;
        let listed: string[] = [];
        const samples = await repeatTimed(listSeconds, async () => {
          const reply = await client.expect("GET", path, [200], { keepBodyBytes: listingBytes });
          bytes = reply.bodyBytes;
          listed = parseTags(`GET ${path}`, reply);
        });
        const value = median(samples);
        context.report("tags-list", value, {
          samples,
          warnings: missingFrom(listed).map((problem) => `GET ${path}: ${problem}`),
          notes: [
            `${listed.length} tags, ${bytes} bytes per listing, ${(1000 / value).toFixed(0)} listings/s sequential`,
          ],
        });
      });

      await context.measure("tags-page", async () => {
        const first = `/v2/${repo}/tags/list?n=${tagsPage}`;
        const pageLimit = Math.ceil(tagCount / tagsPage) * 2 + 10;
        let pages = 0;
        let listed: string[] = [];
        let oversized = 0;
        const samples = await repeatTimed(listSeconds, async () => {
          pages = 0;
          oversized = 0;
          listed = [];
          let path: string | undefined = first;
          while (path !== undefined) {
            const reply = await client.expect("GET", path, [200], {
              keepBodyBytes: listingBytes,
            });
            const page = parseTags(`GET ${path}`, reply);
            if (page.length > tagsPage) oversized += 1;
            listed.push(...page);
            pages += 1;
            if (pages > pageLimit)
              throw new Error(`more than ${pageLimit} pages; last GET ${path}`);
            const next = nextLink(reply.headers.link);
            const nextUrl = next === undefined ? undefined : new URL(next, context.target.url);
            path = nextUrl ? `${nextUrl.pathname}${nextUrl.search}` : undefined;
          }
        });
        const warnings = missingFrom(listed).map(
          (problem) => `paginated walk from GET ${first}: ${problem}`,
        );
        const incomparable =
          oversized > 0
            ? `${context.target.kind} ignores n=${tagsPage} (GET ${first} returned ${oversized} page(s) with more tags, ${pages} page(s) per walk)`
            : undefined;
        context.report("tags-page", median(samples), {
          samples,
          warnings,
          ...(incomparable ? { incomparable } : {}),
          notes: [`${pages} pages, ${listed.length} tags per walk`],
        });
      });
    } finally {
      client.close();
    }
  },
};

export const crossRepoMount: Scenario = {
  id: "mounts",
  figures: (config) => [
    {
      id: "mounts",
      label: `Cross-repo blob mount to new repos, c=${config.mountConcurrency}`,
      unit: "mounts/s",
      better: "higher",
    },
  ],
  async run(context) {
    const source = "bench/mount-src";
    const layer = context.data.fixture.layers[0];
    if (!layer) throw new Error("fixture image has no layer");
    const query = `?mount=${encodeURIComponent(layer.digest)}&from=${encodeURIComponent(source)}`;
    const client = new RegistryClient(context.target.url, 1);
    try {
      await client.pushSmallBlob(source, layer);
      await client.expect("POST", `/v2/bench/mount-check/blobs/uploads/${query}`, [201]);
      await client.headBlob("bench/mount-check", layer.digest);
    } finally {
      client.close();
    }
    await measureRate(context, "mounts", "mounts", {
      method: "POST",
      path: `/v2/bench/mnt-{i}/blobs/uploads/${query}`,
      headers: { "content-length": "0" },
      expectStatus: [201],
      concurrency: context.config.mountConcurrency,
      durationMs: context.config.mountSeconds * 1000,
      maxRequests: context.config.mounts,
    });
  },
};
