// Blob uploads over HTTP: POST (start, monolithic with ?digest=, or cross-repository
// mount with ?mount=&from=), PATCH chunks, PUT to complete, GET status, DELETE to cancel.
import { parseUploadContentRange } from "../../oci/content-range.ts";
import { parseDigest } from "../../oci/digest.ts";
import { OciError } from "../../oci/oci-error.ts";
import { parseRepositoryName } from "../../oci/reference.ts";
import type { ChunkRange } from "../../registry/upload-operations.ts";
import type { UploadInfo } from "../../storage/blob-store.ts";
import { ownedChunks } from "../../storage/chunk-release.ts";
import { contentLength, hasBody } from "../request-body.ts";
import type { RequestContext } from "../request-context.ts";
import { sendEmpty } from "../responses.ts";

export async function startUpload(ctx: RequestContext): Promise<void> {
  const { req, query, registry } = ctx;
  const name = parseRepositoryName(ctx.match.name);
  const mount = query.get("mount");
  const from = query.get("from");
  if (mount !== null && from !== null) {
    const digest = parseDigest(mount);
    const fromName = parseRepositoryName(from);
    // A caller who may not pull from the source repository gets a normal upload instead.
    if (ctx.access(fromName, "pull") && (await registry.blobs.mount(name, digest, fromName))) {
      sendBlobCreated(ctx, name, digest);
      return;
    }
    // Not mountable: fall through to a normal upload session, as the spec says.
  }
  const digestParam = query.get("digest");
  if (digestParam !== null) {
    const digest = parseDigest(digestParam);
    await registry.uploads.monolithic(
      name,
      digest,
      ownedChunks(req),
      contentLength(req),
      ctx.signal,
    );
    sendBlobCreated(ctx, name, digest);
    return;
  }
  if (hasBody(req)) {
    throw new OciError("BLOB_UPLOAD_INVALID", { reason: "a body needs ?digest= on POST" });
  }
  const upload = await registry.uploads.start(name);
  sendUploadProgress(ctx, upload.repository, upload.id, 0);
}

export async function patchUpload(ctx: RequestContext): Promise<void> {
  const { req, registry } = ctx;
  const name = parseRepositoryName(ctx.match.name);
  const id = ctx.match.tail;
  const size = await registry.uploads
    .append(name, id, ownedChunks(req), chunkRange(ctx), contentLength(req), ctx.signal)
    .catch(withUploadProgress(name, id));
  sendUploadProgress(ctx, name, id, size);
}

export async function putUpload(ctx: RequestContext): Promise<void> {
  const { req, query, registry } = ctx;
  const name = parseRepositoryName(ctx.match.name);
  const id = ctx.match.tail;
  const digestParam = query.get("digest");
  if (digestParam === null)
    throw new OciError("DIGEST_INVALID", { reason: "?digest= is required" });
  const digest = parseDigest(digestParam);
  const body = hasBody(req) ? ownedChunks(req) : undefined;
  await registry.uploads
    .finish(name, id, digest, body, chunkRange(ctx), contentLength(req), ctx.signal)
    .catch(withUploadProgress(name, id));
  sendBlobCreated(ctx, name, digest);
}

export async function getUploadStatus(ctx: RequestContext): Promise<void> {
  const name = parseRepositoryName(ctx.match.name);
  const upload: UploadInfo = await ctx.registry.uploads.status(name, ctx.match.tail);
  sendEmpty(ctx.res, 204, {
    Location: uploadLocation(name, upload.id),
    Range: rangeHeader(upload.size),
    "Docker-Upload-UUID": upload.id,
  });
}

export async function deleteUpload(ctx: RequestContext): Promise<void> {
  const name = parseRepositoryName(ctx.match.name);
  await ctx.registry.uploads.cancel(name, ctx.match.tail);
  sendEmpty(ctx.res, 204);
}

function chunkRange(ctx: RequestContext): ChunkRange | undefined {
  const header = ctx.req.headers["content-range"];
  return header === undefined ? undefined : parseUploadContentRange(header);
}

/** The `Range` header of an upload's progress: `0-<last byte>` (`0-0` when empty). */
function rangeHeader(size: number): string {
  return `0-${Math.max(size - 1, 0)}`;
}

function uploadLocation(repository: string, id: string): string {
  return `/v2/${repository}/blobs/uploads/${id}`;
}

/** An out-of-order chunk's 416 tells the client where the upload stands, as the spec asks. */
function withUploadProgress(name: string, id: string): (error: unknown) => never {
  return (error) => {
    const detail = (error as OciError | undefined)?.detail as { expectedStart?: unknown };
    if (
      error instanceof OciError &&
      error.code === "RANGE_INVALID" &&
      typeof detail?.expectedStart === "number"
    ) {
      throw new OciError(error.code, error.detail, {
        cause: error,
        headers: {
          ...error.headers,
          Range: rangeHeader(detail.expectedStart),
          Location: uploadLocation(name, id),
          "Docker-Upload-UUID": id,
        },
      });
    }
    throw error;
  };
}

function sendUploadProgress(ctx: RequestContext, name: string, id: string, size: number): void {
  sendEmpty(ctx.res, 202, {
    Location: uploadLocation(name, id),
    Range: rangeHeader(size),
    "Docker-Upload-UUID": id,
  });
}

function sendBlobCreated(ctx: RequestContext, name: string, digest: string): void {
  sendEmpty(ctx.res, 201, {
    Location: `/v2/${name}/blobs/${digest}`,
    "Docker-Content-Digest": digest,
  });
}
