// Shared pieces of the hostile-input tests: the spec's grammar as an independent oracle,
// fast-check runs with a printed seed, the images pushed before the attacks, and the
// checks that they survived byte for byte and that every stored blob matches its name.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import fc from "fast-check";
import {
  dockerManifestType,
  imageIndex,
  imageManifest,
  ociIndexType,
  ociManifestType,
  randomBlob,
  type TestBlob,
} from "./oci-fixtures.ts";
import { type RawResponse, rawRequest, type Target } from "./raw-http.ts";
import { smallBlobRows } from "./stored-blobs.ts";

/** The spec's grammar, written out again here so the tests do not trust the server's copy. */
export const nameOracle =
  /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
export const tagOracle = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
export const digestOracle = /^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

export function isValidName(name: string): boolean {
  return name.length > 0 && name.length <= 255 && nameOracle.test(name);
}

/** How the server sees the last path segment: percent-decoded when that is possible. */
export function decodedSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

export function isValidReference(segment: string): boolean {
  const decoded = decodedSegment(segment);
  return decoded.includes(":") ? digestOracle.test(decoded) : tagOracle.test(decoded);
}

/**
 * The fast-check seed of this run: HOSTILE_SEED to replay one; in CI a fixed seed, so
 * that what lands is judged on the same cases every time; elsewhere a fresh one, so
 * that developers' runs keep exploring new cases.
 */
const ciSeed = 20261125;
export const hostileSeed = Number(
  process.env.HOSTILE_SEED ?? (process.env.CI ? ciSeed : Date.now() % 2_147_483_647),
);

/** Runs a property with the run's seed; a failure names the seed to replay it with. */
export async function checkProperty<Ts>(
  name: string,
  property: fc.IAsyncProperty<Ts>,
  numRuns: number,
): Promise<void> {
  try {
    await fc.assert(property, { seed: hostileSeed, numRuns, includeErrorInReport: true });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(
      `property "${name}" failed; replay with HOSTILE_SEED=${hostileSeed}\n${message}`,
    );
  }
}

export interface ProtectedManifest {
  repository: string;
  tag: string;
  digest: string;
  mediaType: string;
  bytes: Buffer;
  /** Blobs the manifest references (config and layers), to check byte for byte too. */
  blobs: TestBlob[];
}

/** Images pushed before the attacks, which must come out of them unchanged. */
export interface ProtectedImages {
  manifests: ProtectedManifest[];
  repositories: string[];
  blobDigests: string[];
  manifestDigests: string[];
}

async function ok(
  response: Promise<RawResponse>,
  status: number,
  what: string,
): Promise<RawResponse> {
  const answer = await response;
  assert.equal(answer.status, status, `${what}: ${answer.body.toString("utf8").slice(0, 300)}`);
  return answer;
}

export async function pushBlobRaw(
  target: Target,
  repository: string,
  blob: TestBlob,
): Promise<void> {
  await ok(
    rawRequest(target, {
      method: "POST",
      path: `/v2/${repository}/blobs/uploads/?digest=${blob.digest}`,
      headers: { "Content-Type": "application/octet-stream" },
      body: blob.bytes,
    }),
    201,
    `push blob ${blob.digest} to ${repository}`,
  );
}

export async function pushManifestRaw(
  target: Target,
  repository: string,
  reference: string,
  bytes: Buffer,
  mediaType: string,
): Promise<void> {
  await ok(
    rawRequest(target, {
      method: "PUT",
      path: `/v2/${repository}/manifests/${reference}`,
      headers: { "Content-Type": mediaType },
      body: bytes,
    }),
    201,
    `push manifest ${reference} to ${repository}`,
  );
}

/** Pushes two repositories of images (OCI, Docker, an index) that the attacks must not touch. */
export async function pushProtectedImages(target: Target): Promise<ProtectedImages> {
  const manifests: ProtectedManifest[] = [];
  const push = async (
    repository: string,
    tag: string,
    mediaType: string,
    build: () => { json: string; digest: string; blobs: TestBlob[] },
  ) => {
    const { json, digest, blobs } = build();
    for (const blob of blobs) await pushBlobRaw(target, repository, blob);
    const bytes = Buffer.from(json);
    await pushManifestRaw(target, repository, tag, bytes, mediaType);
    manifests.push({ repository, tag, digest, mediaType, bytes, blobs });
    return { digest, size: bytes.length };
  };
  const ociImage = (layers: number[]) => () => {
    const config = randomBlob(300);
    const blobs = layers.map((size) => randomBlob(size));
    const manifest = imageManifest(config, blobs);
    return { json: manifest.json, digest: manifest.digest, blobs: [config, ...blobs] };
  };
  const oci = await push("hostile/valid", "stable-oci", ociManifestType, ociImage([5000, 70_000]));
  const docker = await push("hostile/valid", "stable-docker", dockerManifestType, () => {
    const config = randomBlob(200);
    const layer = randomBlob(12_345);
    const manifest = imageManifest(config, [layer], {}, dockerManifestType);
    return { json: manifest.json, digest: manifest.digest, blobs: [config, layer] };
  });
  await push("hostile/valid", "stable-index", ociIndexType, () => {
    const index = imageIndex([
      { digest: oci.digest, size: oci.size, platform: { os: "linux", architecture: "amd64" } },
      {
        digest: docker.digest,
        size: docker.size,
        platform: { os: "linux", architecture: "arm64" },
      },
    ]);
    return { json: index.json, digest: index.digest, blobs: [] };
  });
  await push("hostile/other", "keep", ociManifestType, ociImage([1, 0, 4096]));
  return {
    manifests,
    repositories: ["hostile/valid", "hostile/other"],
    blobDigests: [...new Set(manifests.flatMap((m) => m.blobs.map((b) => b.digest)))],
    manifestDigests: manifests.map((m) => m.digest),
  };
}

/** Every protected manifest still resolves by tag and by digest, byte for byte, blobs too. */
export async function assertProtectedIntact(
  target: Target,
  images: ProtectedImages,
): Promise<void> {
  for (const manifest of images.manifests) {
    for (const reference of [manifest.tag, manifest.digest]) {
      const response = await ok(
        rawRequest(target, {
          method: "GET",
          path: `/v2/${manifest.repository}/manifests/${reference}`,
        }),
        200,
        `protected ${manifest.repository}:${reference}`,
      );
      assert.equal(response.headers["content-type"], manifest.mediaType);
      assert.equal(response.headers["docker-content-digest"], manifest.digest);
      assert.ok(
        response.body.equals(manifest.bytes),
        `${manifest.repository}:${reference} changed`,
      );
    }
    for (const blob of manifest.blobs) {
      const response = await ok(
        rawRequest(target, {
          method: "GET",
          path: `/v2/${manifest.repository}/blobs/${blob.digest}`,
        }),
        200,
        `protected blob ${blob.digest} in ${manifest.repository}`,
      );
      assert.ok(response.body.equals(blob.bytes), `blob ${blob.digest} changed`);
    }
  }
}

/**
 * Every tag the registry lists for `repository` resolves (GET manifest 200), and every
 * blob the manifest names is linked there.
 */
export async function assertTagsResolve(target: Target, repository: string): Promise<number> {
  const list = await ok(
    rawRequest(target, { method: "GET", path: `/v2/${repository}/tags/list` }),
    200,
    `tags of ${repository}`,
  );
  const { tags } = JSON.parse(list.body.toString("utf8")) as { tags: string[] };
  for (const tag of tags) {
    const manifest = await ok(
      rawRequest(target, { method: "GET", path: `/v2/${repository}/manifests/${tag}` }),
      200,
      `listed tag ${repository}:${tag}`,
    );
    for (const digest of referencedBlobs(manifest.body, String(manifest.headers["content-type"]))) {
      await ok(
        rawRequest(target, { method: "HEAD", path: `/v2/${repository}/blobs/${digest}` }),
        200,
        `blob ${digest} of ${repository}:${tag}`,
      );
    }
  }
  return tags.length;
}

/** The config and distributable layers a manifest of `mediaType` names (none for indexes). */
export function referencedBlobs(bytes: Buffer, mediaType: string): string[] {
  if (mediaType === ociIndexType || mediaType.includes("manifest.list")) return [];
  type Descriptor = { digest: string; urls?: string[] };
  const body = JSON.parse(bytes.toString("utf8")) as {
    config?: Descriptor;
    layers?: Descriptor[];
    blobs?: Descriptor[];
  };
  const distributable = (list: unknown) =>
    (Array.isArray(list) ? (list as Descriptor[]) : [])
      .filter((d) => !d.urls || d.urls.length === 0)
      .map((d) => d.digest);
  if (mediaType === "application/vnd.oci.artifact.manifest.v1+json") {
    return distributable(body.blobs);
  }
  return [...(body.config ? [body.config.digest] : []), ...distributable(body.layers)];
}

/**
 * Every file under `<dataDir>/blobs/<algorithm>/<xx>/<hex>` hashes to its name and sits
 * in the folder of its first two hex digits, and every row of the small-blob table hashes
 * to its digest; returns how many blobs were checked.
 */
export async function assertBlobFilesVerify(dataDir: string): Promise<number> {
  let checked = 0;
  for (const row of await smallBlobRows(dataDir)) {
    const [algorithm = "", hex] = row.digest.split(":");
    assert.equal(createHash(algorithm).update(row.bytes).digest("hex"), hex, `row ${row.digest}`);
    checked += 1;
  }
  return checked + (await assertFilesVerify(dataDir));
}

async function assertFilesVerify(dataDir: string): Promise<number> {
  const root = join(dataDir, "blobs");
  let checked = 0;
  for (const algorithm of await readdir(root)) {
    assert.ok(algorithm === "sha256" || algorithm === "sha512", `unexpected blobs/${algorithm}`);
    for (const prefix of await readdir(join(root, algorithm))) {
      for (const name of await readdir(join(root, algorithm, prefix))) {
        const bytes: Buffer = await readFile(join(root, algorithm, prefix, name));
        const actual: string = createHash(algorithm).update(bytes).digest("hex");
        assert.equal(actual, name, `blobs/${algorithm}/${prefix}/${name} does not match its name`);
        assert.equal(name.slice(0, 2), prefix, `blobs/${algorithm}/${prefix}/${name} misplaced`);
        checked += 1;
      }
    }
  }
  return checked;
}

/** Every repository of the catalog, page by page. */
export async function catalog(target: Target): Promise<string[]> {
  const names: string[] = [];
  let path = "/v2/_catalog?n=1000";
  for (;;) {
    const page = await ok(rawRequest(target, { method: "GET", path }), 200, "catalog");
    names.push(
      ...(JSON.parse(page.body.toString("utf8")) as { repositories: string[] }).repositories,
    );
    const link = page.headers.link;
    const next = typeof link === "string" ? /^<([^>]+)>; rel="next"$/.exec(link)?.[1] : undefined;
    if (!next) return names;
    path = next;
  }
}
