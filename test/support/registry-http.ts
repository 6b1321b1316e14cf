// Thin helpers over fetch for end-to-end tests: push blobs and manifests, read the
// OCI error body of a failed response.
import assert from "node:assert/strict";
import type { TestBlob } from "./oci-fixtures.ts";

export async function pushBlob(base: string, repo: string, blob: TestBlob): Promise<void> {
  const response = await fetch(`${base}/v2/${repo}/blobs/uploads/?digest=${blob.digest}`, {
    method: "POST",
    headers: { "Content-Type": "application/octet-stream" },
    body: blob.bytes,
  });
  assert.equal(response.status, 201, await response.text());
}

export async function pushManifest(
  base: string,
  repo: string,
  reference: string,
  manifest: { json: string },
  mediaType: string,
): Promise<Response> {
  return fetch(`${base}/v2/${repo}/manifests/${reference}`, {
    method: "PUT",
    headers: { "Content-Type": mediaType },
    body: manifest.json,
  });
}

/** Asserts an OCI error response and returns its first error. */
export async function expectError(
  response: Response,
  status: number,
  code: string,
): Promise<{ code: string; message: string; detail: unknown }> {
  const text = await response.text();
  assert.equal(response.status, status, text);
  if (response.headers.get("content-length") === "0" || text === "") {
    // HEAD responses carry no body.
    return { code, message: "", detail: undefined };
  }
  const body = JSON.parse(text) as { errors: { code: string; message: string; detail: unknown }[] };
  assert.equal(body.errors[0]?.code, code, text);
  assert.equal(typeof body.errors[0]?.message, "string");
  return body.errors[0] as { code: string; message: string; detail: unknown };
}
