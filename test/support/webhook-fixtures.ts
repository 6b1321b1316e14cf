// Helpers of the webhook end-to-end tests: push a small image by tag, call the webhook
// admin API, and write a replica configuration with webhook settings.
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { stringify as toYaml } from "yaml";
import { imageManifest, ociManifestType, randomBlob } from "./oci-fixtures.ts";
import { pushBlob, pushManifest } from "./registry-http.ts";

export interface PushedImage {
  digest: string;
  blobs: string[];
  size: number;
  /** The request id the registry gave the manifest push (its X-Request-Id). */
  requestId: string | null;
}

/** Pushes a config and one layer of `layerBytes` random bytes, then the manifest by tag. */
export async function pushImage(
  base: string,
  repository: string,
  tag: string,
  layerBytes = 2048,
): Promise<PushedImage> {
  const config = randomBlob(128);
  const layer = randomBlob(layerBytes);
  await pushBlob(base, repository, config);
  await pushBlob(base, repository, layer);
  const manifest = imageManifest(config, [layer]);
  const response = await pushManifest(base, repository, tag, manifest, ociManifestType);
  assert.equal(response.status, 201, await response.text());
  return {
    digest: manifest.digest,
    blobs: [config.digest, layer.digest],
    size: manifest.size,
    requestId: response.headers.get("x-request-id"),
  };
}

/** A parsed answer, read loosely: the tests' assertions say when its shape is wrong. */
// biome-ignore lint/suspicious/noExplicitAny: answers of many shapes, checked by assertions
type Loose = any;

/** Calls the webhook admin API; status and parsed body. */
export async function webhookApi(
  base: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Loose }> {
  const response = await fetch(`${base}/_meridian/admin/webhooks${path}`, {
    method,
    headers: { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await response.text();
  return { status: response.status, body: text === "" ? undefined : JSON.parse(text) };
}

/** Writes a configuration file holding only a `webhooks` section; its path. */
export async function webhookConfig(dir: string, webhooks: Record<string, unknown>) {
  const file = join(dir, "meridian.yaml");
  await writeFile(file, toYaml({ webhooks }));
  return file;
}
