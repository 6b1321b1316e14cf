// Manifests over HTTP: GET/HEAD with Accept negotiation, PUT (by tag or digest) and
// DELETE (a manifest by digest, or a single tag).
import type { IncomingMessage } from "node:http";
import type { StoredManifest } from "../../metadata/metadata-store.ts";
import { maxManifestBytes } from "../../oci/manifest.ts";
import { manifestMediaTypes } from "../../oci/media-types.ts";
import { OciError } from "../../oci/oci-error.ts";
import { lookupReference, parseReference, parseRepositoryName } from "../../oci/reference.ts";
import { changeRequestOf } from "../change-request.ts";
import { readBody } from "../request-body.ts";
import type { RequestContext } from "../request-context.ts";
import { sendEmpty } from "../responses.ts";

export async function getManifest({ req, res, match, registry }: RequestContext): Promise<void> {
  const name = parseRepositoryName(match.name);
  const reference = lookupReference(match.tail);
  const manifest = await registry.manifests.get(name, reference);
  requireAcceptable(req, manifest);
  res.writeHead(200, {
    "Content-Type": manifest.mediaType,
    "Content-Length": String(manifest.bytes.length),
    "Docker-Content-Digest": manifest.digest,
    ETag: `"${manifest.digest}"`,
  });
  res.end(req.method === "HEAD" ? undefined : manifest.bytes);
}

export async function putManifest(ctx: RequestContext): Promise<void> {
  const { req, res, match, registry } = ctx;
  const name = parseRepositoryName(match.name);
  const reference = parseReference(match.tail);
  const bytes = await readBody(req, maxManifestBytes);
  const contentType = req.headers["content-type"];
  const result = await registry.manifests.put(
    name,
    reference,
    bytes,
    contentType,
    changeRequestOf(ctx),
  );
  const headers: Record<string, string> = {
    Location: `/v2/${name}/manifests/${result.digest}`,
    "Docker-Content-Digest": result.digest,
  };
  if (result.subject) headers["OCI-Subject"] = result.subject;
  sendEmpty(res, 201, headers);
}

export async function deleteManifest(ctx: RequestContext): Promise<void> {
  const { res, match, registry } = ctx;
  const name = parseRepositoryName(match.name);
  const reference = parseReference(match.tail);
  await registry.manifests.delete(name, reference, changeRequestOf(ctx));
  sendEmpty(res, 202);
}

/**
 * Accept negotiation. A registry stores one representation of a manifest, so it is served
 * whenever the client accepts it, accepts anything, or names no manifest type at all.
 * Only when the client lists manifest types and the stored one is not among them does it
 * get MANIFEST_UNKNOWN, as the CNCF Distribution registry answers.
 */
function requireAcceptable(req: IncomingMessage, manifest: StoredManifest): void {
  const header = req.headers.accept;
  if (!header) return;
  const accepted = header
    .split(",")
    .map((part) => part.split(";")[0]?.trim().toLowerCase() ?? "")
    .filter((type) => type.length > 0);
  if (accepted.includes("*/*") || accepted.includes(manifest.mediaType)) return;
  if (!accepted.some((type) => manifestMediaTypes.has(type))) return;
  throw new OciError("MANIFEST_UNKNOWN", {
    reason: "the manifest's media type is not in the Accept header",
    mediaType: manifest.mediaType,
  });
}
