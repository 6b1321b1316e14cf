// Blob reads (GET with Range, HEAD) and deletes.
import { parseReadRange } from "../../oci/content-range.ts";
import { parseDigest } from "../../oci/digest.ts";
import { parseRepositoryName } from "../../oci/reference.ts";
import type { RequestContext } from "../request-context.ts";
import { sendEmpty, withUnsatisfiedRange } from "../responses.ts";

export async function getBlob({ req, res, match, registry }: RequestContext): Promise<void> {
  const name = parseRepositoryName(match.name);
  const digest = parseDigest(match.tail);
  const range = parseReadRange(
    typeof req.headers.range === "string" ? req.headers.range : undefined,
  );
  const read = await registry.blobs.read(name, digest, range).catch(withUnsatisfiedRange);
  if (read.redirect) {
    // The object store serves the bytes (and the Range, which the client sends again).
    res.writeHead(307, { Location: read.redirect, "Docker-Content-Digest": digest });
    res.end();
    return;
  }
  const headers: Record<string, string> = {
    "Content-Type": "application/octet-stream",
    "Docker-Content-Digest": digest,
    ETag: `"${digest}"`,
    "Accept-Ranges": "bytes",
    "Cache-Control": "max-age=31536000",
  };
  // The head goes out with the first byte: a read-through that fails before it still
  // answers with an error rather than a broken 200.
  const begin = () => {
    if (read.range) {
      const { start, end } = read.range;
      res.writeHead(206, {
        ...headers,
        "Content-Length": String(end - start + 1),
        "Content-Range": `bytes ${start}-${end}/${read.size}`,
      });
    } else {
      res.writeHead(200, { ...headers, "Content-Length": String(read.size) });
    }
  };
  await read.sendTo(res, begin);
  res.end();
}

export async function headBlob({ res, match, registry }: RequestContext): Promise<void> {
  const name = parseRepositoryName(match.name);
  const digest = parseDigest(match.tail);
  const { size } = await registry.blobs.stat(name, digest);
  res.writeHead(200, {
    "Content-Type": "application/octet-stream",
    "Content-Length": String(size),
    "Docker-Content-Digest": digest,
    ETag: `"${digest}"`,
    "Accept-Ranges": "bytes",
  });
  res.end();
}

export async function deleteBlob({ res, match, registry }: RequestContext): Promise<void> {
  const name = parseRepositoryName(match.name);
  const digest = parseDigest(match.tail);
  await registry.blobs.delete(name, digest);
  sendEmpty(res, 202, { "Docker-Content-Digest": digest });
}
