// The HTTP client for one peer's API, with the replication credential. Every reply is
// checked before it is used.
import { Readable } from "node:stream";
import type { RepositoryExport } from "../metadata/metadata-store.ts";
import type { Digest } from "../oci/digest.ts";
import { parseDigest } from "../oci/digest.ts";
import { parseStamp } from "../registry/hybrid-clock.ts";
import { peerAuthorization } from "./peer-credential.ts";
import { type FeedPage, PeerProtocolError, parseFeedPage } from "./wire-format.ts";

export interface PeerEndpoint {
  /** The peer's region name, which is also its id among replicas. */
  region: string;
  /** Base URL of the peer's regional endpoint (possibly through a WAN link). */
  url: string;
}

export class PeerRequestError extends Error {
  constructor(
    readonly region: string,
    readonly status: number,
    message: string,
  ) {
    super(`peer ${region}: ${message}`);
    this.name = "PeerRequestError";
  }
}

export class PeerClient {
  readonly region: string;
  private readonly base: string;
  private readonly authorization: string;

  constructor(endpoint: PeerEndpoint, secret: string) {
    this.region = endpoint.region;
    this.base = endpoint.url.replace(/\/+$/, "");
    this.authorization = peerAuthorization(secret);
  }

  /** One feed page after `since`, waiting up to `waitMs` for new records. */
  async feed(since: number, waitMs: number, signal?: AbortSignal): Promise<FeedPage> {
    const response = await this.get(`feed?since=${since}&wait=${waitMs}`, {}, signal);
    return parseFeedPage(await this.json(response));
  }

  /**
   * Opens the blob's bytes from `offset` on. Undefined when the peer does not have it.
   * `total` is the blob's full size.
   */
  async openBlob(
    digest: Digest,
    offset: number,
    signal?: AbortSignal,
  ): Promise<{ body: Readable; total: number } | undefined> {
    const headers: Record<string, string> = offset > 0 ? { Range: `bytes=${offset}-` } : {};
    const response = await this.get(`blobs/${digest}`, headers, signal, [200, 206, 404, 416]);
    if (response.status === 404 || response.status === 416 || !response.body) {
      await response.body?.cancel();
      return undefined;
    }
    let total = Number(response.headers.get("content-length"));
    if (response.status === 206) {
      const match = /\/(\d+)$/.exec(response.headers.get("content-range") ?? "");
      if (!match) throw new PeerProtocolError("206 without Content-Range");
      total = Number(match[1]);
    } else if (offset > 0) {
      // The peer ignored the range: start over.
      await response.body.cancel();
      return this.openBlob(digest, 0, signal);
    }
    if (!Number.isSafeInteger(total)) throw new PeerProtocolError("blob without a length");
    return {
      body: Readable.fromWeb(response.body as import("node:stream/web").ReadableStream),
      total,
    };
  }

  async manifest(
    repository: string,
    digest: Digest,
  ): Promise<{ mediaType: string; bytes: Buffer } | undefined> {
    const query = `repository=${encodeURIComponent(repository)}&digest=${encodeURIComponent(digest)}`;
    const response = await this.get(`manifest?${query}`, {}, undefined, [200, 404]);
    if (response.status === 404) {
      await response.body?.cancel();
      return undefined;
    }
    const mediaType = response.headers.get("content-type") ?? "";
    return { mediaType, bytes: Buffer.from(await response.arrayBuffer()) };
  }

  async stateDigest(repository: string): Promise<string> {
    const response = await this.get(`state?repository=${encodeURIComponent(repository)}`);
    const body = (await this.json(response)) as { digest?: unknown };
    if (typeof body.digest !== "string") throw new PeerProtocolError("state without digest");
    return body.digest;
  }

  async repositories(): Promise<string[]> {
    const body = (await this.json(await this.get("repositories"))) as { repositories?: unknown };
    if (
      !Array.isArray(body.repositories) ||
      !body.repositories.every((r) => typeof r === "string")
    ) {
      throw new PeerProtocolError("repositories must be a list of names");
    }
    return body.repositories;
  }

  async exportRepository(repository: string): Promise<RepositoryExport> {
    const response = await this.get(`export?repository=${encodeURIComponent(repository)}`);
    const body = (await this.json(response)) as Record<string, unknown>;
    const list = (value: unknown): Record<string, unknown>[] => {
      if (!Array.isArray(value)) throw new PeerProtocolError("export lists must be arrays");
      return value as Record<string, unknown>[];
    };
    const stamp = (value: unknown): string => {
      if (typeof value !== "string" || !parseStamp(value))
        throw new PeerProtocolError("bad stamp in export");
      return value;
    };
    const digest = (value: unknown): Digest => {
      try {
        return parseDigest(String(value));
      } catch {
        throw new PeerProtocolError("bad digest in export");
      }
    };
    return {
      manifests: list(body.manifests).map((m) => ({
        digest: digest(m.digest),
        mediaType: String(m.mediaType),
        bytes: Buffer.from(String(m.bytes), "base64"),
        stamp: stamp(m.stamp),
      })),
      tags: list(body.tags).map((t) => ({
        tag: String(t.tag),
        digest: t.digest === null ? null : digest(t.digest),
        stamp: stamp(t.stamp),
      })),
      tombstones: list(body.tombstones).map((t) => ({
        digest: digest(t.digest),
        stamp: stamp(t.stamp),
      })),
    };
  }

  private async get(
    path: string,
    headers: Record<string, string> = {},
    signal?: AbortSignal,
    accept: number[] = [200],
  ): Promise<Response> {
    const response = await fetch(`${this.base}/_meridian/replication/${path}`, {
      headers: { Authorization: this.authorization, ...headers },
      signal: signal ?? null,
    });
    if (!accept.includes(response.status)) {
      const text = (await response.text()).slice(0, 300);
      throw new PeerRequestError(
        this.region,
        response.status,
        `GET ${path.split("?")[0]} -> ${response.status} ${text}`,
      );
    }
    return response;
  }

  private async json(response: Response): Promise<unknown> {
    try {
      return await response.json();
    } catch {
      throw new PeerProtocolError("reply is not JSON");
    }
  }
}
