// The HTTP client for one peer's API, with the replication credential. Every reply is
// checked before it is used.
import { Agent, get as httpGet, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, get as httpsGet } from "node:https";
import type { Readable } from "node:stream";
import type { RepositoryExport } from "../metadata/metadata-store.ts";
import type { Digest } from "../oci/digest.ts";
import { parseDigest } from "../oci/digest.ts";
import { parseStamp } from "../registry/hybrid-clock.ts";
import { peerAuthorization, peerRegionHeader } from "./peer-credential.ts";
import { type FeedPage, feedStreamType, PeerProtocolError, parseFeedPage } from "./wire-format.ts";

export interface PeerEndpoint {
  /** The peer's region name, which is also its id among replicas. */
  region: string;
  /** Base URL of the peer's regional endpoint (possibly through a WAN link). */
  url: string;
}

/** How long a peer may take to start answering a request (beyond a long-poll's wait). */
const requestTimeoutMs = 10_000;
/** Feed pages and exports are JSON; anything larger than this is refused. */
const maxReplyBytes = 512 * 1024 * 1024;

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
  /** Names this replica to the peer on every request (peerRegionHeader), when known. */
  private readonly caller: Record<string, string>;
  // A peer behind TLS is reached over HTTPS (trusting the system CAs and NODE_EXTRA_CA_CERTS).
  private readonly secure: boolean;
  private readonly agent: Agent;

  /** `from`: this replica's region, told to the peer so that it knows this replica is up. */
  constructor(endpoint: PeerEndpoint, secret: string, from?: string) {
    this.region = endpoint.region;
    this.caller = from ? { [peerRegionHeader]: from } : {};
    this.base = endpoint.url.replace(/\/+$/, "");
    this.secure = this.base.startsWith("https:");
    this.agent = this.secure
      ? new HttpsAgent({ keepAlive: true, maxSockets: 16 })
      : new Agent({ keepAlive: true, maxSockets: 16 });
    this.authorization = peerAuthorization(secret);
  }

  /** The base URL this client reaches the peer at. */
  get url(): string {
    return this.base;
  }

  /** One feed page after `since`, waiting up to `waitMs` for new records. */
  async feed(since: number, waitMs: number, signal?: AbortSignal): Promise<FeedPage> {
    const response = await this.get(
      `feed?since=${since}&wait=${waitMs}`,
      {},
      signal,
      [200],
      waitMs + requestTimeoutMs,
    );
    return parseFeedPage(await this.json(response));
  }

  /**
   * The feed after `since` as a stream of pages, each as soon as the peer committed its
   * records (feed-endpoint.ts); a peer of an older build answers one page (a long-poll of
   * up to `waitMs`), which this yields before it ends. The peer writes a page at least
   * every `waitMs`: a stream silent for longer than that and `requestTimeoutMs` is cut (a
   * cut link). The time the caller spends on a page does not count.
   */
  async *feedStream(since: number, waitMs: number, signal?: AbortSignal): AsyncGenerator<FeedPage> {
    const response = await this.get(
      `feed?since=${since}&wait=${waitMs}&stream=1`,
      {},
      signal,
      [200],
      waitMs + requestTimeoutMs,
    );
    if (!response.header("content-type")?.startsWith(feedStreamType)) {
      yield parseFeedPage(await this.json(response));
      return;
    }
    const { message } = response;
    const silentMs = waitMs + requestTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const watch = () => {
      clearTimeout(timer);
      timer = setTimeout(
        () => message.destroy(new Error(`peer ${this.region}: feed silent for ${silentMs} ms`)),
        silentMs,
      );
    };
    try {
      watch();
      let partial: Buffer[] = [];
      let partialBytes = 0;
      for await (const chunk of message as AsyncIterable<Buffer>) {
        let start = 0;
        for (let end = chunk.indexOf(10); end !== -1; end = chunk.indexOf(10, start)) {
          partial.push(chunk.subarray(start, end));
          const line = Buffer.concat(partial).toString("utf8");
          partial = [];
          partialBytes = 0;
          start = end + 1;
          let page: FeedPage;
          try {
            page = parseFeedPage(JSON.parse(line));
          } catch (error) {
            if (error instanceof PeerProtocolError) throw error;
            throw new PeerProtocolError("a feed stream line is not JSON");
          }
          clearTimeout(timer);
          yield page;
          watch();
        }
        if (start < chunk.length) {
          partial.push(chunk.subarray(start));
          partialBytes += chunk.length - start;
          if (partialBytes > maxReplyBytes) throw new PeerProtocolError("feed page too large");
        }
      }
    } finally {
      clearTimeout(timer);
      if (!message.readableEnded) message.destroy();
    }
  }

  /** The peer's newest seq and change-log identity, without waiting. */
  async head(timeoutMs = requestTimeoutMs): Promise<{ head: number; log: string | undefined }> {
    const response = await this.get("feed?since=0&limit=1&wait=0", {}, undefined, [200], timeoutMs);
    const page = parseFeedPage(await this.json(response));
    return { head: page.head, log: page.log };
  }

  /**
   * Resolves once the peer holds every record that `region` (a replica being deleted)
   * holds: it has followed that replica's feed to its head and merged its state.
   */
  async drained(region: string, timeoutMs: number): Promise<void> {
    const response = await this.get(
      `drained?peer=${encodeURIComponent(region)}&timeoutMs=${timeoutMs}`,
      {},
      undefined,
      [200],
      timeoutMs + requestTimeoutMs,
    );
    await this.json(response);
  }

  /**
   * Opens the blob's bytes from `offset` on. Undefined when the peer does not have it.
   * `total` is the blob's full size; `start` is where the body starts: `offset`, or 0 when
   * the peer ignored the range.
   */
  async openBlob(
    digest: Digest,
    offset: number,
    signal?: AbortSignal,
  ): Promise<{ body: Readable; total: number; start: number } | undefined> {
    const headers: Record<string, string> = offset > 0 ? { Range: `bytes=${offset}-` } : {};
    const response = await this.get(`blobs/${digest}`, headers, signal, [200, 206, 404, 416]);
    if (response.status === 404 || response.status === 416) {
      response.discard();
      return undefined;
    }
    let total = Number(response.header("content-length"));
    if (response.status === 206) {
      const match = /\/(\d+)$/.exec(response.header("content-range") ?? "");
      if (!match) throw new PeerProtocolError("206 without Content-Range");
      total = Number(match[1]);
    } else if (offset > 0) {
      // The peer ignored the range: start over.
      response.message.destroy();
      return this.openBlob(digest, 0, signal);
    }
    if (!Number.isSafeInteger(total)) throw new PeerProtocolError("blob without a length");
    return { body: response.message, total, start: offset };
  }

  async manifest(
    repository: string,
    digest: Digest,
  ): Promise<{ mediaType: string; bytes: Buffer } | undefined> {
    const query = `repository=${encodeURIComponent(repository)}&digest=${encodeURIComponent(digest)}`;
    const response = await this.get(`manifest?${query}`, {}, undefined, [200, 404]);
    if (response.status === 404) {
      response.discard();
      return undefined;
    }
    const mediaType = response.header("content-type") ?? "";
    return { mediaType, bytes: await response.buffer() };
  }

  /**
   * The peer's link of `digest` into `repository` (it holds the bytes too): the blob's
   * size and the link's stamp, or undefined when the peer does not link it. `timeoutMs`
   * bounds the wait for the answer to start, `signal` the whole exchange.
   */
  async blobLink(
    repository: string,
    digest: Digest,
    options: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<{ size: number; stamp: string } | undefined> {
    const response = await this.lookup("link", { repository, digest }, options);
    if (!response) return undefined;
    const body = (await this.json(response)) as { size?: unknown; stamp?: unknown };
    if (typeof body.size !== "number" || !Number.isSafeInteger(body.size) || body.size < 0) {
      throw new PeerProtocolError("link without a size");
    }
    if (typeof body.stamp !== "string" || !parseStamp(body.stamp)) {
      throw new PeerProtocolError("link without a valid stamp");
    }
    return { size: body.size, stamp: body.stamp };
  }

  /** A manifest by tag or digest, with the stamps the peer holds for it. */
  async manifestByReference(
    repository: string,
    reference: string,
    options: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<
    | {
        digest: Digest;
        mediaType: string;
        bytes: Buffer;
        stamp: string;
        tagStamp?: string | undefined;
      }
    | undefined
  > {
    const response = await this.lookup("manifest", { repository, reference }, options);
    if (!response) return undefined;
    const stamp = response.header("x-meridian-stamp");
    const tagStamp = response.header("x-meridian-tag-stamp");
    if (!stamp || !parseStamp(stamp) || (tagStamp !== undefined && !parseStamp(tagStamp))) {
      throw new PeerProtocolError("manifest without a valid stamp");
    }
    let digest: Digest;
    try {
      digest = parseDigest(response.header("docker-content-digest") ?? "");
    } catch {
      throw new PeerProtocolError("manifest without a valid digest");
    }
    return {
      digest,
      mediaType: response.header("content-type") ?? "",
      bytes: await response.buffer(),
      stamp,
      tagStamp,
    };
  }

  async stateDigest(repository: string): Promise<string> {
    const response = await this.get(`state?repository=${encodeURIComponent(repository)}`);
    const body = (await this.json(response)) as { digest?: unknown };
    if (typeof body.digest !== "string") throw new PeerProtocolError("state without digest");
    return body.digest;
  }

  /** The state digest of every repository the peer knows, in one request. */
  async stateDigests(): Promise<Map<string, string>> {
    const body = (await this.json(await this.get("state"))) as { digests?: unknown };
    const digests = body.digests;
    if (typeof digests !== "object" || digests === null || Array.isArray(digests)) {
      throw new PeerProtocolError("state must be {digests: {repository: digest}}");
    }
    const result = new Map<string, string>();
    for (const [repository, digest] of Object.entries(digests)) {
      if (typeof digest !== "string") throw new PeerProtocolError("state digests are strings");
      result.set(repository, digest);
    }
    return result;
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
      tombstones: list(body.tombstones).map((t) => {
        if (t.expired !== undefined && t.expired !== true)
          throw new PeerProtocolError("bad tombstone in export");
        const tombstone = { digest: digest(t.digest), stamp: stamp(t.stamp) };
        return t.expired === true ? { ...tombstone, expired: true } : tombstone;
      }),
      links: list(body.links).map((l) => {
        if (typeof l.linked !== "boolean") throw new PeerProtocolError("bad link in export");
        if (l.expired !== undefined && l.expired !== true)
          throw new PeerProtocolError("bad link in export");
        const link = { digest: digest(l.digest), linked: l.linked, stamp: stamp(l.stamp) };
        return l.expired === true && !l.linked ? { ...link, expired: true } : link;
      }),
      controls: list(body.controls ?? []).map((c) => {
        if (typeof c.kind !== "string" || typeof c.name !== "string")
          throw new PeerProtocolError("bad control record in export");
        if (c.value !== null && typeof c.value !== "string")
          throw new PeerProtocolError("bad control record value in export");
        return { kind: c.kind, name: c.name, value: c.value, stamp: stamp(c.stamp) };
      }),
    };
  }

  /** A GET of `route` with `params`; undefined when the peer answers 404. */
  private async lookup(
    route: string,
    params: Record<string, string>,
    options: { signal?: AbortSignal; timeoutMs?: number },
  ): Promise<PeerResponse | undefined> {
    const query = new URLSearchParams(params).toString();
    const response = await this.get(
      `${route}?${query}`,
      {},
      options.signal,
      [200, 404],
      options.timeoutMs,
    );
    if (response.status !== 404) return response;
    response.discard();
    return undefined;
  }

  private get(
    path: string,
    headers: Record<string, string> = {},
    signal?: AbortSignal,
    accept: number[] = [200],
    timeoutMs: number = requestTimeoutMs,
  ): Promise<PeerResponse> {
    // A peer that stops answering (a cut link, a hung process) must not hold a follower:
    // a request gives up when its answer has not started within the deadline. Bodies
    // (blobs) are watched for stalls by their reader instead. node:http rather than
    // fetch: Node 20's fetch never settles when a proxy resets a fresh connection.
    return new Promise((resolve, reject) => {
      const request = (this.secure ? httpsGet : httpGet)(
        `${this.base}/_meridian/replication/${path}`,
        {
          headers: { Authorization: this.authorization, ...this.caller, ...headers },
          agent: this.agent,
          signal,
        },
        (response) => {
          clearTimeout(timer);
          const status = response.statusCode ?? 0;
          if (accept.includes(status)) {
            resolve(new PeerResponse(response));
            return;
          }
          new PeerResponse(response)
            .text()
            .then(
              (text) =>
                reject(
                  new PeerRequestError(
                    this.region,
                    status,
                    `GET ${path.split("?")[0]} -> ${status} ${text.slice(0, 300)}`,
                  ),
                ),
              reject,
            );
        },
      );
      const timer = setTimeout(
        () => request.destroy(new Error(`peer ${this.region}: no answer in ${timeoutMs} ms`)),
        timeoutMs,
      );
      request.on("error", (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  private async json(response: PeerResponse): Promise<unknown> {
    try {
      return JSON.parse(await response.text());
    } catch {
      throw new PeerProtocolError("reply is not JSON");
    }
  }

  /** Closes idle keep-alive connections. */
  close(): void {
    this.agent.destroy();
  }
}

/** A peer's answer: status, headers, and the body as a stream or read whole. */
class PeerResponse {
  constructor(readonly message: IncomingMessage) {}

  get status(): number {
    return this.message.statusCode ?? 0;
  }

  header(name: string): string | undefined {
    const value = this.message.headers[name];
    return Array.isArray(value) ? value[0] : value;
  }

  async text(): Promise<string> {
    return (await this.buffer()).toString("utf8");
  }

  async buffer(): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of this.message) {
      total += (chunk as Buffer).length;
      if (total > maxReplyBytes) throw new PeerProtocolError("reply too large");
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks);
  }

  discard(): void {
    this.message.resume();
  }
}
