// Content and plumbing for import tests: a two-platform OCI index whose platforms share a
// layer, with an SBOM referrer on the index, pushed to any registry (Meridian with
// credentials, or CNCF Distribution, which lacks the referrers API and gets the tag-schema
// fallback index as oras writes it); and a node:http proxy in front of a source that counts
// requests and can answer the next N with 429 + Retry-After.
import assert from "node:assert/strict";
import {
  createServer,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";
import {
  blobOf,
  imageIndex,
  imageManifest,
  ociIndexType,
  ociManifestType,
  randomBlob,
  type TestBlob,
} from "./oci-fixtures.ts";
import { waitFor } from "./wait-for.ts";

export interface TwoPlatformImage {
  blobs: TestBlob[];
  amd64: TestBlob & { json: string };
  arm64: TestBlob & { json: string };
  index: TestBlob & { json: string };
  referrer: TestBlob & { json: string };
}

export function twoPlatformImage(): TwoPlatformImage {
  const shared = randomBlob(64 * 1024);
  const amd64Config = blobOf(
    Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers" } })),
  );
  const arm64Config = blobOf(
    Buffer.from(JSON.stringify({ architecture: "arm64", os: "linux", rootfs: { type: "layers" } })),
  );
  const amd64Layer = randomBlob(300 * 1024);
  const arm64Layer = randomBlob(200 * 1024);
  const amd64 = imageManifest(amd64Config, [shared, amd64Layer]);
  const arm64 = imageManifest(arm64Config, [shared, arm64Layer]);
  const index = imageIndex([
    { digest: amd64.digest, size: amd64.size, platform: { os: "linux", architecture: "amd64" } },
    {
      digest: arm64.digest,
      size: arm64.size,
      platform: { os: "linux", architecture: "arm64", variant: "v8" },
    },
  ]);
  const empty = blobOf(Buffer.from("{}"));
  const sbom = blobOf(Buffer.from(JSON.stringify({ spdxVersion: "SPDX-2.3", name: "app" })));
  const referrerJson = JSON.stringify({
    schemaVersion: 2,
    mediaType: ociManifestType,
    artifactType: "application/spdx+json",
    config: {
      mediaType: "application/vnd.oci.empty.v1+json",
      digest: empty.digest,
      size: empty.size,
    },
    layers: [{ mediaType: "application/spdx+json", digest: sbom.digest, size: sbom.size }],
    subject: { mediaType: ociIndexType, digest: index.digest, size: index.size },
  });
  const referrer = { ...blobOf(Buffer.from(referrerJson)), json: referrerJson };
  return {
    blobs: [shared, amd64Config, arm64Config, amd64Layer, arm64Layer, empty, sbom],
    amd64,
    arm64,
    index,
    referrer,
  };
}

/** Pushes the image under `repo:tag` (monolithic blob uploads, manifests by digest, then the tag). */
export async function pushTwoPlatformImage(
  base: string,
  repo: string,
  tag: string,
  image: TwoPlatformImage,
  options: { authorization?: string; fallbackTag?: boolean } = {},
): Promise<void> {
  const auth: Record<string, string> = options.authorization
    ? { Authorization: options.authorization }
    : {};
  for (const blob of image.blobs) await pushBlobAs(base, repo, blob, auth);
  const put = async (reference: string, json: string, type: string) => {
    const response = await fetch(`${base}/v2/${repo}/manifests/${reference}`, {
      method: "PUT",
      headers: { "Content-Type": type, ...auth },
      body: json,
    });
    assert.equal(response.status, 201, `${reference}: ${await response.text()}`);
  };
  await put(image.amd64.digest, image.amd64.json, ociManifestType);
  await put(image.arm64.digest, image.arm64.json, ociManifestType);
  await put(tag, image.index.json, ociIndexType);
  await put(image.referrer.digest, image.referrer.json, ociManifestType);
  if (options.fallbackTag) {
    const fallback = JSON.stringify({
      schemaVersion: 2,
      mediaType: ociIndexType,
      manifests: [
        {
          mediaType: ociManifestType,
          digest: image.referrer.digest,
          size: image.referrer.size,
          artifactType: "application/spdx+json",
        },
      ],
    });
    await put(image.index.digest.replace(":", "-"), fallback, ociIndexType);
  }
}

export async function pushBlobAs(
  base: string,
  repo: string,
  blob: TestBlob,
  headers: Record<string, string> = {},
): Promise<void> {
  // POST then PUT: Distribution 2.8 has no monolithic POST ?digest=.
  const start = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: "POST", headers });
  assert.equal(start.status, 202, await start.text());
  const location = new URL(start.headers.get("location") ?? "", base);
  location.searchParams.set("digest", blob.digest);
  const done = await fetch(location, {
    method: "PUT",
    headers: { "Content-Type": "application/octet-stream", ...headers },
    body: blob.bytes,
  });
  assert.equal(done.status, 201, await done.text());
}

export interface SourceProxy {
  readonly url: string;
  readonly host: string;
  /** Requests seen per kind since the last reset. */
  readonly counts: { blobGets: number; manifestGets: number; all: number; throttled: number };
  /** The next `n` requests get 429 with Retry-After: 1. */
  throttleNext(n: number): void;
  /** The next answer for blob `digest` is cut (its connection destroyed) after `bytes` of its body. */
  cutBlobAfter(digest: string, bytes: number): void;
  /** The next GET of blob `digest` is held, unanswered, until `release` (or the client goes). */
  holdBlob(digest: string): void;
  /** How many requests are held now. */
  readonly held: number;
  release(): void;
  /** The Range headers of the blob GETs seen since the last reset. */
  readonly ranges: string[];
  reset(): void;
  close(): Promise<void>;
}

/** A proxy on 127.0.0.1 in front of `target` (an http:// base URL), Host header kept. */
export async function startSourceProxy(target: string): Promise<SourceProxy> {
  const upstream = new URL(target);
  const counts = { blobGets: 0, manifestGets: 0, all: 0, throttled: 0 };
  let throttle = 0;
  let cutting: { digest: string; bytes: number } | undefined;
  let holding: string | undefined;
  const held = new Set<() => void>();
  const ranges: string[] = [];
  const server: Server = createServer((req, res) => {
    counts.all += 1;
    if (throttle > 0) {
      throttle -= 1;
      counts.throttled += 1;
      req.resume();
      res.writeHead(429, { "Retry-After": "1", "Content-Type": "application/json" });
      res.end(
        JSON.stringify({ errors: [{ code: "TOOMANYREQUESTS", message: "slow down", detail: {} }] }),
      );
      return;
    }
    const blobGet = req.method === "GET" && /\/blobs\/sha/.test(req.url ?? "");
    if (blobGet) {
      counts.blobGets += 1;
      if (typeof req.headers.range === "string") ranges.push(req.headers.range);
    }
    const cut = blobGet && cutting && req.url?.endsWith(cutting.digest) ? cutting.bytes : undefined;
    if (cut !== undefined) cutting = undefined;
    if (req.method === "GET" && /\/manifests\//.test(req.url ?? "")) counts.manifestGets += 1;
    if (blobGet && holding && req.url?.endsWith(holding)) {
      holding = undefined;
      const forward = () => {
        held.delete(forward);
        if (!res.destroyed) pass(req, res, cut);
      };
      held.add(forward);
      // The client went (a response closes early only when its connection does).
      res.on("close", () => held.delete(forward));
      return;
    }
    pass(req, res, cut);
  });
  const pass = (req: IncomingMessage, res: ServerResponse, cut: number | undefined) => {
    const out = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        if (cut === undefined || answer.statusCode !== 200) {
          answer.pipe(res);
          return;
        }
        let sent = 0;
        answer.on("data", (chunk: Buffer) => {
          if (sent >= cut) return;
          const part = chunk.subarray(0, cut - sent);
          sent += part.length;
          res.write(part);
          // Then the connection goes, mid-body, as a network failure would take it.
          if (sent >= cut) res.socket?.destroy();
        });
        answer.on("end", () => res.end());
      },
    );
    out.on("error", () => res.destroy());
    req.pipe(out);
  };
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    counts,
    ranges,
    throttleNext: (n) => {
      throttle = n;
    },
    cutBlobAfter: (digest, bytes) => {
      cutting = { digest, bytes };
    },
    holdBlob: (digest) => {
      holding = digest;
    },
    get held() {
      return held.size;
    },
    release: () => {
      for (const forward of [...held]) forward();
    },
    reset: () => {
      Object.assign(counts, { blobGets: 0, manifestGets: 0, all: 0, throttled: 0 });
      ranges.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export interface ImportJob {
  id: string;
  state: string;
  reason?: string;
  digest?: string;
  progress: {
    blobsDone: number;
    blobsTotal: number;
    bytesDone: number;
    bytesTotal: number;
    blobsSkipped: number;
    bytesTransferred: number;
    throttled: number;
  };
}

/** Submits an import through the admin API and waits (with a deadline) until it ends. */
export async function runImport(
  base: string,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<ImportJob> {
  const submitted = await fetch(`${base}/_meridian/admin/imports`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  const text = await submitted.text();
  assert.equal(submitted.status, 202, text);
  const job = JSON.parse(text) as ImportJob;
  assert.equal(job.state, "queued");
  let current = job;
  await waitFor(
    async () => {
      const answer = await fetch(`${base}/_meridian/admin/imports/${job.id}`, { headers });
      current = (await answer.json()) as ImportJob;
      return current.state === "succeeded" || current.state === "failed";
    },
    `import ${job.id} to end`,
    60_000,
    50,
  );
  return current;
}
