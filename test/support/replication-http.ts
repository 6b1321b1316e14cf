// HTTP helpers of the replication tests: build and push whole images, read what a region
// answers for a manifest reference, and check blobs byte for byte against their digests.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  imageManifest,
  ociIndexType,
  ociManifestType,
  randomBlob,
  type TestBlob,
} from "./oci-fixtures.ts";
import { pushBlob, pushManifest } from "./registry-http.ts";

export interface TestImage {
  config: TestBlob;
  layers: TestBlob[];
  manifest: TestBlob & { json: string };
}

/** The Accept header of a client that takes any OCI or Docker manifest. */
export const manifestAccept = [
  ociManifestType,
  ociIndexType,
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
].join(", ");

/** An image of random layers (sizes in bytes) with a small unique config. */
export function makeImage(layerSizes: readonly number[], label = ""): TestImage {
  const config = randomBlob(64 + label.length);
  const layers = layerSizes.map((size) => randomBlob(size));
  return { config, layers, manifest: imageManifest(config, layers) };
}

/** Pushes the image's blobs and its manifest under `reference`; returns the manifest digest. */
export async function pushImage(
  base: string,
  repository: string,
  reference: string,
  image: TestImage,
): Promise<string> {
  for (const blob of [image.config, ...image.layers]) await pushBlob(base, repository, blob);
  return putImageManifest(base, repository, reference, image);
}

/** PUTs only the manifest (its blobs must be there); returns the digest the registry gives. */
export async function putImageManifest(
  base: string,
  repository: string,
  reference: string,
  image: TestImage,
): Promise<string> {
  const response = await pushManifest(base, repository, reference, image.manifest, ociManifestType);
  const text = await response.text();
  assert.equal(
    response.status,
    201,
    `PUT ${base}/v2/${repository}/manifests/${reference}: ${text}`,
  );
  const digest = response.headers.get("docker-content-digest");
  assert.equal(digest, image.manifest.digest, "Docker-Content-Digest of the pushed manifest");
  return digest;
}

/** What a region answers for GET /v2/<repository>/manifests/<reference>. */
export interface ManifestAnswer {
  status: number;
  digest?: string | undefined;
  bytes?: Buffer | undefined;
}

export async function getManifest(
  base: string,
  repository: string,
  reference: string,
): Promise<ManifestAnswer> {
  const response = await fetch(`${base}/v2/${repository}/manifests/${reference}`, {
    headers: { Accept: manifestAccept },
    signal: AbortSignal.timeout(10_000),
  });
  const bytes = Buffer.from(await response.arrayBuffer());
  if (response.status !== 200) return { status: response.status };
  return { status: 200, digest: response.headers.get("docker-content-digest") ?? "", bytes };
}

/** The digest a reference names in a region, or "404" when it names nothing there. */
export async function resolvedDigest(
  base: string,
  repository: string,
  reference: string,
): Promise<string> {
  const answer = await getManifest(base, repository, reference);
  if (answer.status === 404) return "404";
  assert.equal(answer.status, 200, `GET ${base}/v2/${repository}/manifests/${reference}`);
  return answer.digest ?? "";
}

export async function headBlobStatus(
  base: string,
  repository: string,
  digest: string,
): Promise<number> {
  const response = await fetch(`${base}/v2/${repository}/blobs/${digest}`, {
    method: "HEAD",
    signal: AbortSignal.timeout(10_000),
  });
  await response.arrayBuffer();
  return response.status;
}

export async function deleteReference(
  base: string,
  repository: string,
  reference: string,
): Promise<number> {
  const response = await fetch(`${base}/v2/${repository}/manifests/${reference}`, {
    method: "DELETE",
    signal: AbortSignal.timeout(10_000),
  });
  await response.arrayBuffer();
  return response.status;
}

/**
 * Streams a blob out of a region and checks that its bytes hash to `digest` and have
 * `size` bytes (without holding the blob in memory).
 */
export async function assertBlobServed(
  base: string,
  repository: string,
  digest: string,
  size: number,
): Promise<void> {
  const response = await fetch(`${base}/v2/${repository}/blobs/${digest}`, {
    signal: AbortSignal.timeout(60_000),
  });
  assert.equal(response.status, 200, `GET ${base}/v2/${repository}/blobs/${digest}`);
  assert.ok(response.body, "blob response has a body");
  const hash = createHash("sha256");
  let length = 0;
  for await (const chunk of response.body) {
    hash.update(chunk);
    length += chunk.length;
  }
  assert.equal(length, size, `size of ${digest} served by ${base}`);
  assert.equal(`sha256:${hash.digest("hex")}`, digest, `bytes of ${digest} served by ${base}`);
}
