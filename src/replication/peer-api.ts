// The peer API a replica serves to the other replicas, all behind the replication
// credential:
//
//   GET /_meridian/replication/feed?since=<seq>&limit=<n>&wait=<ms>[&stream=1]
//                                 change feed: one page (long-poll), or a stream of pages
//   GET /_meridian/replication/blobs/<digest>                          blob bytes (Range)
//   GET /_meridian/replication/manifest?repository=&reference=         manifest bytes, stamps
//   GET /_meridian/replication/link?repository=&digest=                whether a blob is linked
//   GET /_meridian/replication/state[?repository=]                     state digest (of each)
//   GET /_meridian/replication/export?repository=                      mergeable state
//   GET /_meridian/replication/repositories                            every repository
//   POST /_meridian/replication/anti-entropy                           one round now
//   GET /_meridian/replication/drained?peer=<region>&timeoutMs=<ms>    answers once this
//                                 replica holds everything that peer (being deleted) holds
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ApiExtension, ExtensionContext } from "../api/api-server.ts";
import { sendJson, withUnsatisfiedRange } from "../api/responses.ts";
import { controlRepository } from "../metadata/metadata-store.ts";
import { parseReadRange, resolveReadRange } from "../oci/content-range.ts";
import { parseDigest } from "../oci/digest.ts";
import { OciError } from "../oci/oci-error.ts";
import { parseReference, parseRepositoryName } from "../oci/reference.ts";
import type { ReplicaState } from "../registry/replica-state.ts";
import { BlobNotFoundError } from "../storage/blob-store.ts";
import type { ChangeWaiter } from "./change-waiter.ts";
import { serveFeed } from "./feed-endpoint.ts";
import { callerRegion, requirePeer } from "./peer-credential.ts";
import { integerParam } from "./query-params.ts";

export interface PeerApiOptions {
  secret: string;
  state: ReplicaState;
  waiter: ChangeWaiter;
  /** Runs one anti-entropy round now; resolves how many repositories it repaired. */
  reconcile: () => Promise<number>;
  /** Resolves once everything `region` holds is here too (before that replica goes). */
  drain?: (region: string, timeoutMs: number) => Promise<void>;
  /** Told of each authenticated request that names the region it comes from. */
  heardFrom?: (region: string) => void;
}

export const peerApiPrefix = "/_meridian/replication/";

export function createPeerApi(options: PeerApiOptions): ApiExtension {
  return {
    prefix: peerApiPrefix,
    async handle(req, res, ctx) {
      requirePeer(req, options.secret);
      const caller = callerRegion(req);
      if (caller) options.heardFrom?.(caller);
      const route = ctx.path.slice(peerApiPrefix.length);
      if (route === "anti-entropy" && req.method === "POST") {
        sendJson(res, 200, { repaired: await options.reconcile() });
        return;
      }
      if (req.method !== "GET" && req.method !== "HEAD")
        throw new OciError("UNSUPPORTED", { method: req.method });
      if (route === "feed") return serveFeed(res, ctx, options);
      if (route === "drained" && options.drain) {
        const region = ctx.query.get("peer") ?? "";
        const timeoutMs = Math.min(integerParam(ctx.query, "timeoutMs", 60_000), 600_000);
        await options.drain(region, timeoutMs);
        sendJson(res, 200, { drained: region });
        return;
      }
      if (route.startsWith("blobs/")) return blob(req, res, route.slice("blobs/".length), options);
      if (route === "manifest") return manifest(res, ctx, options);
      if (route === "link") return link(res, ctx, options);
      if (route === "state") return state(res, ctx, options);
      if (route === "export") return exportRepository(res, ctx, options);
      if (route === "repositories") {
        sendJson(res, 200, { repositories: await options.state.repositories() });
        return;
      }
      throw new OciError("NAME_UNKNOWN", { path: ctx.path.slice(0, 200) }, { status: 404 });
    },
  };
}

async function blob(
  req: IncomingMessage,
  res: ServerResponse,
  digestText: string,
  options: PeerApiOptions,
): Promise<void> {
  const digest = parseDigest(decodeURIComponent(digestText));
  const info = await options.state.blob(digest);
  if (!info) throw new OciError("BLOB_UNKNOWN", { digest });
  const rangeHeader = typeof req.headers.range === "string" ? req.headers.range : undefined;
  let range: ReturnType<typeof resolveReadRange>;
  try {
    range = resolveReadRange(parseReadRange(rangeHeader), info.size);
  } catch (error) {
    withUnsatisfiedRange(error);
  }
  let body: Readable;
  try {
    body = await options.state.readBlob(
      digest,
      range ?? { start: 0, end: Math.max(info.size - 1, 0) },
    );
  } catch (error) {
    if (error instanceof BlobNotFoundError)
      throw new OciError("BLOB_UNKNOWN", { digest }, { cause: error });
    throw error;
  }
  const headers: Record<string, string> = {
    "Content-Type": "application/octet-stream",
    "Docker-Content-Digest": digest,
  };
  if (range) {
    headers["Content-Range"] = `bytes ${range.start}-${range.end}/${info.size}`;
    headers["Content-Length"] = String(range.end - range.start + 1);
  } else {
    headers["Content-Length"] = String(info.size);
  }
  res.writeHead(range ? 206 : 200, headers);
  if (req.method === "HEAD") {
    body.destroy();
    res.end();
    return;
  }
  await pipeline(body, res);
}

/** A manifest by digest (`digest=`) or by tag or digest (`reference=`), with its stamps. */
async function manifest(res: ServerResponse, ctx: ExtensionContext, options: PeerApiOptions) {
  const repository = parseRepositoryName(ctx.query.get("repository") ?? "");
  const reference = parseReference(ctx.query.get("reference") ?? ctx.query.get("digest") ?? "");
  const stored =
    reference.kind === "digest"
      ? await options.state.manifest(repository, { digest: reference.digest })
      : await options.state.manifest(repository, { tag: reference.tag });
  if (!stored) throw new OciError("MANIFEST_UNKNOWN", { repository });
  const headers: Record<string, string> = {
    "Content-Type": stored.mediaType,
    "Content-Length": String(stored.bytes.length),
    "Docker-Content-Digest": stored.digest,
    "X-Meridian-Stamp": stored.stamp,
  };
  if (stored.tagStamp) headers["X-Meridian-Tag-Stamp"] = stored.tagStamp;
  res.writeHead(200, headers);
  res.end(stored.bytes);
}

/** Whether the repository links a blob here (split pushes ask before fetching it). */
async function link(res: ServerResponse, ctx: ExtensionContext, options: PeerApiOptions) {
  const repository = parseRepositoryName(ctx.query.get("repository") ?? "");
  const digest = parseDigest(ctx.query.get("digest") ?? "");
  const found = await options.state.blobLink(repository, digest);
  if (!found) throw new OciError("BLOB_UNKNOWN", { digest });
  sendJson(res, 200, { size: found.size, stamp: found.stamp });
}

async function state(res: ServerResponse, ctx: ExtensionContext, options: PeerApiOptions) {
  if (!ctx.query.has("repository")) {
    // Every repository's digest in one answer: anti-entropy costs one request per peer a
    // round, whatever the number of repositories.
    const digests = await options.state.stateDigests();
    sendJson(res, 200, { digests: Object.fromEntries(digests) });
    return;
  }
  const repository = parseRepositoryName(ctx.query.get("repository") ?? "");
  sendJson(res, 200, { repository, digest: await options.state.stateDigest(repository) });
}

async function exportRepository(
  res: ServerResponse,
  ctx: ExtensionContext,
  options: PeerApiOptions,
) {
  const asked = ctx.query.get("repository") ?? "";
  // The control records travel as one more "repository" that no real one can be named.
  const repository = asked === controlRepository ? asked : parseRepositoryName(asked);
  const exported = await options.state.exportRepository(repository);
  sendJson(res, 200, {
    repository,
    manifests: exported.manifests.map((m) => ({ ...m, bytes: m.bytes.toString("base64") })),
    tags: exported.tags,
    tombstones: exported.tombstones,
    links: exported.links,
    controls: exported.controls ?? [],
  });
}
