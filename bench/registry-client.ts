// Minimal OCI distribution client over node:http with a keep-alive agent: streamed blob
// uploads (monolithic, chunked, single-POST), manifest PUT, blob pull/HEAD, tag listing.
// Every unexpected answer becomes a RegistryError naming the exact request and response.
import { createHash } from "node:crypto";
import http, { type IncomingHttpHeaders, type OutgoingHttpHeaders } from "node:http";
import { type BlobSource, ociManifestType, type SmallBlob, type SmallImage } from "./blob-data.ts";

export interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** The first `keepBodyBytes` bytes of the body. */
  readonly body: Buffer;
  /** Total body length received. */
  readonly bodyBytes: number;
  /** `sha256:<hex>` of the whole body when `hashBody` was asked. */
  readonly bodyDigest?: string;
}

export interface BlobRange {
  readonly source: BlobSource;
  readonly start: number;
  readonly end: number;
}

export interface SendOptions {
  readonly headers?: OutgoingHttpHeaders;
  readonly body?: Buffer | BlobRange;
  /** Bytes of the body kept in Reply.body (the rest is counted and dropped). */
  readonly keepBodyBytes?: number;
  readonly hashBody?: boolean;
}

/** A request that got an answer other than the expected one (or no answer at all). */
export class RegistryError extends Error {
  constructor(
    readonly request: string,
    readonly status: number | undefined,
    readonly responseBody: string,
    detail?: string,
  ) {
    super(
      status === undefined
        ? `${request} -> ${detail ?? "no response"}`
        : `${request} -> HTTP ${status}${detail ? ` (${detail})` : ""}${responseBody ? `: ${responseBody}` : ""}`,
    );
    this.name = "RegistryError";
  }
}

const writeSliceBytes = 4 * 1024 * 1024;
const idleTimeoutMs = 60_000;

function describeBody(body: Buffer): string {
  const text = body.toString("utf8").replace(/\s+/g, " ").trim();
  return text.length > 500 ? `${text.slice(0, 500)}...` : text;
}

/** Appends a query parameter without re-encoding the existing query (upload state tokens). */
export function withParam(path: string, name: string, value: string): string {
  return `${path}${path.includes("?") ? "&" : "?"}${name}=${encodeURIComponent(value)}`;
}

export class RegistryClient {
  readonly origin: URL;
  private readonly agent: http.Agent;

  constructor(baseUrl: string, maxSockets: number) {
    this.origin = new URL(baseUrl);
    this.agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
  }

  close(): void {
    this.agent.destroy();
  }

  /** Path and query of a Location header, resolved against the registry's origin. */
  locationPath(request: string, reply: Reply): string {
    const location = reply.headers.location;
    if (!location) {
      throw new RegistryError(request, reply.status, describeBody(reply.body), "no Location");
    }
    const url = new URL(location, this.origin);
    return `${url.pathname}${url.search}`;
  }

  send(method: string, path: string, options: SendOptions = {}): Promise<Reply> {
    const request = `${method} ${path}`;
    const body = options.body;
    const headers: OutgoingHttpHeaders = { ...options.headers };
    if (body !== undefined) {
      headers["content-length"] = Buffer.isBuffer(body) ? body.length : body.end - body.start;
    } else if (method === "PUT" || method === "POST" || method === "PATCH") {
      headers["content-length"] = 0;
    }
    const keepBodyBytes = options.keepBodyBytes ?? 1024 * 1024;
    return new Promise<Reply>((resolve, reject) => {
      let settled = false;
      let responded = false;
      let bodySent = body === undefined || Buffer.isBuffer(body);
      const fail = (error: Error): void => {
        if (settled) return;
        settled = true;
        reject(
          error instanceof RegistryError
            ? error
            : new RegistryError(request, undefined, "", error.message),
        );
      };
      const req = http.request({
        agent: this.agent,
        hostname: this.origin.hostname,
        port: this.origin.port,
        method,
        path,
        headers,
        timeout: idleTimeoutMs,
      });
      req.on("timeout", () => req.destroy(new Error(`no activity for ${idleTimeoutMs} ms`)));
      req.on("error", fail);
      req.on("response", (res) => {
        responded = true;
        const kept: Buffer[] = [];
        let keptBytes = 0;
        let total = 0;
        const hash = options.hashBody ? createHash("sha256") : undefined;
        res.on("data", (chunk: Buffer) => {
          total += chunk.length;
          hash?.update(chunk);
          if (keptBytes < keepBodyBytes) {
            const part = chunk.subarray(0, keepBodyBytes - keptBytes);
            kept.push(part);
            keptBytes += part.length;
          }
        });
        res.on("error", fail);
        res.on("end", () => {
          // The server answered before taking the whole body: the socket cannot be reused.
          if (!bodySent) req.destroy();
          if (settled) return;
          settled = true;
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(kept),
            bodyBytes: total,
            ...(hash ? { bodyDigest: `sha256:${hash.digest("hex")}` } : {}),
          });
        });
      });
      if (body === undefined) {
        req.end();
      } else if (Buffer.isBuffer(body)) {
        req.end(body);
      } else {
        const waitWritable = (): Promise<void> =>
          new Promise((done) => {
            const finish = (): void => {
              req.off("drain", finish);
              req.off("close", finish);
              req.off("response", finish);
              done();
            };
            req.on("drain", finish);
            req.on("close", finish);
            req.on("response", finish);
          });
        const pump = async (): Promise<void> => {
          for (const slice of body.source.slices(body.start, body.end, writeSliceBytes)) {
            if (responded || req.destroyed) return;
            if (!req.write(slice)) await waitWritable();
          }
          if (responded || req.destroyed) return;
          req.end();
          bodySent = true;
        };
        pump().catch((error: unknown) => fail(error as Error));
      }
    });
  }

  /** Sends and checks the status; throws a RegistryError describing the exchange otherwise. */
  async expect(
    method: string,
    path: string,
    statuses: readonly number[],
    options: SendOptions = {},
  ): Promise<Reply> {
    const reply = await this.send(method, path, options);
    if (!statuses.includes(reply.status)) {
      throw new RegistryError(
        `${method} ${path}`,
        reply.status,
        describeBody(reply.body),
        `expected ${statuses.join("/")}`,
      );
    }
    return reply;
  }

  private async startUpload(repo: string): Promise<string> {
    const path = `/v2/${repo}/blobs/uploads/`;
    const reply = await this.expect("POST", path, [202]);
    return this.locationPath(`POST ${path}`, reply);
  }

  /** POST, then one PUT ?digest= streaming the whole blob. */
  async pushMonolithic(repo: string, blob: BlobSource): Promise<void> {
    const upload = await this.startUpload(repo);
    await this.expect("PUT", withParam(upload, "digest", blob.digest), [201], {
      headers: { "content-type": "application/octet-stream" },
      body: { source: blob, start: 0, end: blob.size },
    });
  }

  /** POST, PATCHes of `chunkBytes` following Location, then PUT ?digest= with no body. */
  async pushChunked(repo: string, blob: BlobSource, chunkBytes: number): Promise<void> {
    let upload = await this.startUpload(repo);
    for (let start = 0; start < blob.size; start += chunkBytes) {
      const end = Math.min(blob.size, start + chunkBytes);
      const reply = await this.expect("PATCH", upload, [202], {
        headers: {
          "content-type": "application/octet-stream",
          "content-range": `${start}-${end - 1}`,
        },
        body: { source: blob, start, end },
      });
      const range = reply.headers.range;
      if (range !== undefined && range !== `0-${end - 1}` && range !== `bytes=0-${end - 1}`) {
        throw new RegistryError(
          `PATCH ${upload} (Content-Range ${start}-${end - 1})`,
          reply.status,
          describeBody(reply.body),
          `Range header ${range}, expected 0-${end - 1}`,
        );
      }
      upload = this.locationPath(`PATCH ${upload}`, reply);
    }
    await this.expect("PUT", withParam(upload, "digest", blob.digest), [201]);
  }

  /**
   * Single-request upload: POST ?digest= with the body. A registry that does not implement it
   * answers 202 (as the spec allows) and the client falls back to PUT on the Location.
   * Returns whether the single POST was accepted.
   */
  async pushSmallBlob(repo: string, blob: SmallBlob): Promise<boolean> {
    const path = withParam(`/v2/${repo}/blobs/uploads/`, "digest", blob.digest);
    const headers = { "content-type": "application/octet-stream" };
    const reply = await this.expect("POST", path, [201, 202], { headers, body: blob.data });
    if (reply.status === 201) return true;
    const upload = this.locationPath(`POST ${path}`, reply);
    await this.expect("PUT", withParam(upload, "digest", blob.digest), [201], {
      headers,
      body: blob.data,
    });
    return false;
  }

  /**
   * The way `docker push` and skopeo send a blob: POST to open an upload session, one PATCH
   * with the bytes, then PUT ?digest= with no body.
   */
  async pushSmallBlobInSession(repo: string, blob: SmallBlob): Promise<void> {
    const upload = await this.startUpload(repo);
    const reply = await this.expect("PATCH", upload, [202], {
      headers: { "content-type": "application/octet-stream" },
      body: blob.data,
    });
    const next = this.locationPath(`PATCH ${upload}`, reply);
    await this.expect("PUT", withParam(next, "digest", blob.digest), [201]);
  }

  /**
   * Pushes the image's blobs and its manifest under `tag`. `single`: one POST ?digest= per
   * blob (POST + PUT where the registry answers 202); counts the blobs the single POST took
   * and those that needed the fallback. `session`: POST, PATCH, PUT per blob, as docker does.
   */
  async pushImage(
    repo: string,
    image: SmallImage,
    tag: string,
    style: "single" | "session" = "single",
  ): Promise<{ singlePost: number; fallback: number }> {
    let singlePost = 0;
    for (const blob of [image.config, ...image.layers]) {
      if (style === "session") await this.pushSmallBlobInSession(repo, blob);
      else if (await this.pushSmallBlob(repo, blob)) singlePost += 1;
    }
    if (style === "session") {
      await this.putManifest(repo, tag, image.manifest.data, ociManifestType);
      return { singlePost: 0, fallback: 0 };
    }
    await this.putManifest(repo, tag, image.manifest.data, ociManifestType);
    return { singlePost, fallback: image.layers.length + 1 - singlePost };
  }

  /**
   * GET of the image's manifest at `path`: what differs from what was pushed (bytes,
   * Docker-Content-Digest, Content-Type), and the reply for further checks.
   */
  async checkManifest(
    path: string,
    image: SmallImage,
  ): Promise<{ reply: Reply; problems: string[] }> {
    const reply = await this.expect("GET", path, [200], { headers: { accept: ociManifestType } });
    const request = `GET ${this.origin.origin}${path}`;
    const digest = reply.headers["docker-content-digest"];
    const problems: string[] = [];
    if (!reply.body.equals(image.manifest.data)) {
      problems.push(`${request} -> body differs from the manifest pushed`);
    }
    if (digest !== image.manifest.digest) {
      problems.push(
        `${request} -> Docker-Content-Digest ${digest}, expected ${image.manifest.digest}`,
      );
    }
    if (reply.headers["content-type"] !== ociManifestType) {
      problems.push(`${request} -> Content-Type ${reply.headers["content-type"]}`);
    }
    return { reply, problems };
  }

  async putManifest(repo: string, reference: string, manifest: Buffer, mediaType: string) {
    return this.expect("PUT", `/v2/${repo}/manifests/${reference}`, [201], {
      headers: { "content-type": mediaType },
      body: manifest,
    });
  }

  /** GET of a blob, body counted (and hashed if asked) without being kept. */
  async pullBlob(repo: string, digest: string, hashBody = false): Promise<Reply> {
    return this.expect("GET", `/v2/${repo}/blobs/${digest}`, [200], {
      keepBodyBytes: 4096,
      hashBody,
    });
  }

  async headBlob(repo: string, digest: string): Promise<Reply> {
    return this.expect("HEAD", `/v2/${repo}/blobs/${digest}`, [200]);
  }
}
