// A client for one image's repository on a source registry (any OCI / Docker v2 registry),
// on Node's fetch. It picks the scheme as Docker does (HTTPS; plain HTTP only when a
// loopback or --source-insecure source does not speak TLS), follows the source's token or
// Basic authentication, honours 429/503 with Retry-After (bounded attempts, an injectable
// sleep), and holds one of the source's request slots per request until its body is read.
import { Readable } from "node:stream";
import { setTimeout as delay } from "node:timers/promises";
import type { Logger } from "pino";
import { type Digest, digestAlgorithm, digestHex, digestOf, isDigest } from "../oci/digest.ts";
import { type Descriptor, maxManifestBytes } from "../oci/manifest.ts";
import { manifestMediaTypes, mediaTypes } from "../oci/media-types.ts";
import { refuseMetadataAddresses } from "./address-guard.ts";
import { ImportFailure } from "./import-failure.ts";
import type { RequestSlots } from "./request-slots.ts";
import { SourceAuth, type SourceCredentials } from "./source-auth.ts";
import { isLoopbackHost, type SourceReference } from "./source-reference.ts";
import {
  backoffMs,
  descriptorsOf,
  mediaTypeOf,
  networkReason,
  readLimited,
  retryAfterMs,
} from "./source-response.ts";

export interface SourceClientOptions {
  source: SourceReference;
  credentials?: SourceCredentials | undefined;
  /** Plain HTTP allowed for a source that is not on loopback. */
  insecure: boolean;
  slots: RequestSlots;
  signal: AbortSignal;
  /** How the client waits before a retry (tests inject one). */
  sleep?: ((ms: number, signal: AbortSignal) => Promise<void>) | undefined;
  /** Attempts per request when the source throttles or cannot be reached (default 6). */
  maxAttempts?: number | undefined;
  log?: Logger | undefined;
}

export interface FetchedManifest {
  digest: Digest;
  mediaType: string;
  bytes: Buffer;
}

export interface OpenedBlob {
  body: Readable;
  /** Content-Length (of the range, for a partial answer), when the source sent one. */
  size: number | undefined;
  /** The body starts where the range asked (206), not at byte 0. */
  partial: boolean;
  /** The source refused the range (416): start again from byte 0. */
  unsatisfiable?: boolean;
}

const manifestAccept = [...manifestMediaTypes].join(", ");
/** The longest Retry-After we wait for; a longer one is capped (and still bounded by attempts). */
const maxWaitMs = 60_000;
const maxRedirects = 5;
const pingTimeoutMs = 15_000;

export class SourceClient {
  private base: string | undefined;
  private readonly auth: SourceAuth;
  private readonly scope: string;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private readonly maxAttempts: number;
  /** Hosts whose addresses were checked (address-guard.ts). */
  private readonly checkedHosts = new Set<string>();
  /** How often the source made us wait (429/503), for the job's progress. */
  throttled = 0;

  constructor(private readonly options: SourceClientOptions) {
    this.scope = `repository:${options.source.repository}:pull`;
    this.sleep = options.sleep ?? ((ms, signal) => delay(ms, undefined, { signal }));
    this.maxAttempts = options.maxAttempts ?? 6;
    this.auth = new SourceAuth({
      credentials: options.credentials,
      realmAllowed: (realm) => this.plainAllowed(realm) || realm.protocol === "https:",
      requestToken: async (url, headers) => {
        const { response, release } = await this.send(url, { headers });
        try {
          return {
            status: response.status,
            text: (await readLimited(response, 1 << 20)).toString("utf8"),
          };
        } finally {
          release();
        }
      },
    });
  }

  /** Finds the scheme the source speaks (GET /v2/); throws ImportFailure when none. */
  async connect(): Promise<void> {
    const host = this.options.source.registry;
    const plain = isLoopbackHost(hostOf(host)) || this.options.insecure;
    await this.checkHost(hostOf(host));
    let reason = "";
    for (const scheme of plain ? ["https", "http"] : ["https"]) {
      const release = await this.options.slots.acquire(host, this.options.signal);
      try {
        const response = await fetch(`${scheme}://${host}/v2/`, {
          redirect: "manual",
          signal: AbortSignal.any([this.options.signal, AbortSignal.timeout(pingTimeoutMs)]),
        });
        await response.body?.cancel();
        this.base = `${scheme}://${host}`;
        return;
      } catch (error) {
        if (this.options.signal.aborted) throw error;
        reason = networkReason(error);
        // It speaks TLS, with a certificate we do not trust: no falling back to HTTP then.
        if (scheme === "https" && /CERT|SELF_SIGNED|UNABLE_TO_(VERIFY|GET_ISSUER)/.test(reason)) {
          throw new ImportFailure(
            `the source ${host} has a certificate this replica does not trust (${reason}); give the replica its CA with NODE_EXTRA_CA_CERTS`,
          );
        }
      } finally {
        release();
      }
    }
    throw new ImportFailure(
      plain
        ? `cannot reach the source ${host} (${reason})`
        : `cannot reach the source ${host} over HTTPS (${reason}); plain HTTP needs --source-insecure unless the source is on loopback`,
    );
  }

  /** The manifest `reference` (tag or digest) names; verified against a digest reference. */
  async manifest(reference: string): Promise<FetchedManifest>;
  async manifest(reference: string, optional: true): Promise<FetchedManifest | undefined>;
  async manifest(reference: string, optional = false): Promise<FetchedManifest | undefined> {
    const { response, release } = await this.get(`manifests/${reference}`, manifestAccept);
    try {
      if (response.status === 404 && optional) return undefined;
      if (response.status === 404)
        throw new ImportFailure(`the source has no manifest ${this.name(reference)}`);
      if (response.status !== 200) throw this.unexpected(response, `manifest ${reference}`);
      const bytes = await readLimited(response, maxManifestBytes);
      const isDigest = reference.includes(":");
      const digest = isDigest
        ? digestOf(bytes, digestAlgorithm(reference as Digest))
        : digestOf(bytes);
      const announced = response.headers.get("docker-content-digest");
      if (
        (isDigest && digest !== reference) ||
        (announced?.startsWith("sha256:") && !isDigest && announced !== digest)
      ) {
        throw new ImportFailure(
          `the source's manifest ${this.name(reference)} does not match its digest`,
        );
      }
      return { digest, mediaType: mediaTypeOf(response, bytes), bytes };
    } finally {
      release();
    }
  }

  /**
   * The digest a tag names, from a HEAD (`Docker-Content-Digest`); undefined when the
   * source does not say (the caller then GETs the manifest, which is verified).
   */
  async resolve(tag: string): Promise<Digest | undefined> {
    const { response, release } = await this.get(
      `manifests/${tag}`,
      manifestAccept,
      undefined,
      "HEAD",
    );
    release();
    await response.body?.cancel();
    if (response.status === 404)
      throw new ImportFailure(`the source has no manifest ${this.name(tag)}`);
    const announced = response.headers.get("docker-content-digest") ?? "";
    return response.status === 200 && isDigest(announced) ? (announced as Digest) : undefined;
  }

  /**
   * Opens a blob's bytes, from byte `from` on when it is given (`partial` says whether the
   * source honoured the range; when not, the body starts at 0). The request slot is freed
   * when the body ends or fails. The caller verifies the bytes (the registry's intake does).
   */
  async blob(digest: Digest, from = 0): Promise<OpenedBlob> {
    const range = from > 0 ? `bytes=${from}-` : undefined;
    const { response, release } = await this.get(`blobs/${digest}`, "*/*", range);
    const partial = response.status === 206;
    if ((response.status !== 200 && !partial) || !response.body) {
      release();
      if (response.status === 404) throw new ImportFailure(`the source has no blob ${digest}`);
      if (response.status === 416)
        return { body: Readable.from([]), size: 0, partial: true, unsatisfiable: true };
      throw this.unexpected(response, `blob ${digest}`);
    }
    const length = Number(response.headers.get("content-length") ?? Number.NaN);
    const body = Readable.fromWeb(response.body as import("node:stream/web").ReadableStream);
    body.once("close", release);
    return { body, size: Number.isSafeInteger(length) ? length : undefined, partial };
  }

  /**
   * The manifests whose subject is `digest`: the referrers API, else the tag schema
   * (`<alg>-<hex>`) of registries without it, else none.
   */
  async referrers(digest: Digest): Promise<Descriptor[]> {
    const { response, release } = await this.get(`referrers/${digest}`, mediaTypes.ociIndex);
    let listed: Descriptor[] | undefined;
    try {
      if (response.status === 200)
        listed = descriptorsOf(await readLimited(response, maxManifestBytes));
      else await response.body?.cancel();
    } finally {
      release();
    }
    if (listed) return listed;
    const fallback = await this.manifest(
      `${digestAlgorithm(digest)}-${digestHex(digest)}`.slice(0, 128),
      true,
    );
    return fallback ? (descriptorsOf(fallback.bytes) ?? []) : [];
  }

  private name(reference: string): string {
    const { registry, repository } = this.options.source;
    return `${registry}/${repository}${reference.includes(":") ? "@" : ":"}${reference}`;
  }

  private get(path: string, accept: string, range?: string, method = "GET") {
    if (!this.base) throw new Error("connect() first");
    const url = new URL(`${this.base}/v2/${this.options.source.repository}/${path}`);
    const headers: Record<string, string> = { Accept: accept };
    if (range) headers.Range = range;
    return this.send(url, { headers, scope: this.scope, method });
  }

  /**
   * One request with its retries: 401 is answered through the source's challenge (twice
   * at most), 429 and 503 wait for Retry-After (or a backoff), a failed connection backs
   * off; all within `maxAttempts`. Resolves the answer with its slot still held.
   */
  private async send(
    url: URL,
    request: { headers: Record<string, string>; scope?: string; method?: string },
  ): Promise<{ response: Response; release: () => void }> {
    const { signal, slots, source } = this.options;
    let attempt = 0;
    let challenges = 0;
    for (;;) {
      attempt += 1;
      const release = await slots.acquire(source.registry, signal);
      let response: Response;
      try {
        const headers = { ...request.headers };
        const authorization = request.scope ? this.auth.headerFor(request.scope) : undefined;
        if (authorization) headers.Authorization = authorization;
        response = await this.follow(url, headers, request.method ?? "GET");
      } catch (error) {
        release();
        if (signal.aborted || error instanceof ImportFailure) throw error;
        if (attempt >= this.maxAttempts) {
          throw new ImportFailure(`the source ${source.registry} failed: ${networkReason(error)}`, {
            cause: error,
          });
        }
        await this.sleep(backoffMs(attempt), signal);
        continue;
      }
      if (response.status === 401 && request.scope) {
        await response.body?.cancel();
        release();
        challenges += 1;
        if (challenges > 2) throw this.auth.refused();
        await this.auth.answer(response.headers.get("www-authenticate"), request.scope);
        attempt -= 1;
        continue;
      }
      if ((response.status === 429 || response.status === 503) && attempt < this.maxAttempts) {
        await response.body?.cancel();
        release();
        const waitMs = Math.min(
          retryAfterMs(response.headers.get("retry-after")) ?? backoffMs(attempt),
          maxWaitMs,
        );
        this.throttled += 1;
        this.options.log?.info(
          { source: source.registry, status: response.status, waitMs },
          "source throttled an import; waiting",
        );
        await this.sleep(waitMs, signal);
        continue;
      }
      return { response, release };
    }
  }

  /** fetch, following redirects itself: credentials never go to another origin. */
  private async follow(
    start: URL,
    headers: Record<string, string>,
    method: string,
  ): Promise<Response> {
    let url = start;
    for (let hops = 0; ; hops += 1) {
      await this.checkHost(url.hostname);
      const response = await fetch(url, {
        method,
        headers,
        redirect: "manual",
        signal: this.options.signal,
      });
      const location = response.headers.get("location");
      if (response.status < 300 || response.status >= 400 || response.status === 304 || !location)
        return response;
      await response.body?.cancel();
      if (hops >= maxRedirects)
        throw new ImportFailure(`the source redirected more than ${maxRedirects} times`);
      const next = new URL(location, url);
      if (next.protocol !== "https:" && !(next.protocol === "http:" && this.plainAllowed(next))) {
        throw new ImportFailure(`the source redirected to ${next.origin}, which is not HTTPS`);
      }
      if (next.origin !== url.origin) delete headers.Authorization;
      url = next;
    }
  }

  private async checkHost(hostname: string): Promise<void> {
    if (this.checkedHosts.has(hostname)) return;
    await refuseMetadataAddresses(hostname);
    this.checkedHosts.add(hostname);
  }

  private plainAllowed(url: URL): boolean {
    return url.protocol === "http:" && (this.options.insecure || isLoopbackHost(url.hostname));
  }

  private unexpected(response: Response, what: string): ImportFailure {
    void response.body?.cancel().catch(() => undefined);
    return new ImportFailure(`the source answered ${response.status} for ${what}`);
  }
}

function hostOf(registry: string): string {
  return registry.startsWith("[")
    ? registry.slice(0, registry.indexOf("]") + 1)
    : (registry.split(":")[0] ?? registry);
}
