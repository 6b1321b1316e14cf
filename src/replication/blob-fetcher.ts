// Brings blobs from peers into the local blob store: streamed, verified by digest (the
// blob store's upload commit), resumed with Range after an interruption (the partial
// bytes live in an upload session named after the digest), deduplicated so that each
// blob crosses to this replica once however many repositories and tags use it.
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import type { Digest } from "../oci/digest.ts";
import { ContentUnavailableError } from "../registry/replicated-change.ts";
import { type BlobStore, DigestMismatchError } from "../storage/blob-store.ts";
import type { PeerClient } from "./peer-client.ts";
import type { ReplicationMetrics } from "./replication-metrics.ts";

/** A blob transfer that receives nothing for this long is abandoned (and later resumed). */
const stallMs = 20_000;

/** Upload sessions of replication belong to this pseudo-repository. */
const replicationRepository = "_replication";

export class BlobFetcher {
  private readonly inflight = new Map<Digest, Promise<void>>();
  private outstandingBytes = 0;
  /** Aborted by close(): every transfer in progress stops (its partial bytes stay). */
  private readonly closing = new AbortController();

  constructor(
    private readonly blobs: BlobStore,
    private readonly peers: readonly PeerClient[],
    private readonly metrics: ReplicationMetrics,
  ) {}

  /** Blobs being fetched now. */
  get pendingBlobs(): number {
    return this.inflight.size;
  }

  /** Bytes of the blobs being fetched that have not arrived yet. */
  get pendingBytes(): number {
    return this.outstandingBytes;
  }

  /**
   * Abandons every transfer in progress and refuses new ones, so that a replica that shuts
   * down does not wait for (or hang on) a large or stalled blob. The partial bytes stay in
   * their upload session and the next start resumes them.
   */
  close(): void {
    this.closing.abort(new Error("replication is stopping"));
  }

  /** Makes `digest` present locally, asking `preferred` first, then every other peer. */
  ensureBlob(digest: Digest, preferred?: PeerClient): Promise<void> {
    const running = this.inflight.get(digest);
    if (running) return running;
    const work = this.fetch(digest, preferred).finally(() => {
      this.inflight.delete(digest);
      this.metrics.pendingBlobs.set(this.inflight.size);
    });
    this.inflight.set(digest, work);
    this.metrics.pendingBlobs.set(this.inflight.size);
    return work;
  }

  private async fetch(digest: Digest, preferred?: PeerClient): Promise<void> {
    if (await this.blobs.stat(digest)) return;
    const order = preferred
      ? [preferred, ...this.peers.filter((p) => p !== preferred)]
      : [...this.peers];
    const failures: string[] = [];
    for (const peer of order) {
      this.closing.signal.throwIfAborted();
      try {
        if (await this.fetchFrom(peer, digest)) return;
        failures.push(`${peer.region}: not there`);
      } catch (error) {
        failures.push(`${peer.region}: ${(error as Error).message}`);
      }
    }
    throw new ContentUnavailableError(`blob ${digest} (${failures.join("; ")})`);
  }

  /** True when the blob is now present; false when this peer does not have it. */
  private async fetchFrom(peer: PeerClient, digest: Digest): Promise<boolean> {
    const signal = this.closing.signal;
    const id = uploadIdFor(digest);
    let upload =
      (await this.blobs.getUpload(id)) ??
      (await this.blobs.createUpload(id, replicationRepository));
    const opened = await peer.openBlob(digest, upload.size, signal);
    if (!opened) {
      if (upload.size > 0) return this.commit(id, digest, peer);
      return false;
    }
    if (opened.start !== upload.size) {
      // The peer ignored the range and sends the whole blob: the partial bytes go.
      await this.blobs.deleteUpload(id);
      upload = await this.blobs.createUpload(id, replicationRepository);
    }
    const offset = upload.size;
    const { body } = opened;
    const remaining = opened.total - offset;
    this.addOutstanding(remaining);
    let counted = 0;
    // A body that stops flowing (a cut link) fails the fetch; the next attempt resumes.
    let stallTimer: NodeJS.Timeout | undefined;
    const watchStall = () => {
      clearTimeout(stallTimer);
      stallTimer = setTimeout(
        () => body.destroy(new Error(`no bytes from ${peer.region} for ${stallMs} ms`)),
        stallMs,
      );
    };
    // Iterating the body (rather than piping it) passes its failures on: a reset, a stall
    // or an abort rejects the append instead of leaving it waiting for an end that never
    // comes.
    const { metrics } = this;
    const addOutstanding = (bytes: number) => this.addOutstanding(bytes);
    async function* countedBody(): AsyncGenerator<Buffer> {
      watchStall();
      for await (const chunk of body as AsyncIterable<Buffer>) {
        watchStall();
        counted += chunk.length;
        metrics.bytesReceived.inc({ source_region: peer.region }, chunk.length);
        addOutstanding(-chunk.length);
        yield chunk;
      }
    }
    try {
      await this.blobs.appendUpload(id, offset, Readable.from(countedBody()), signal);
    } finally {
      clearTimeout(stallTimer);
      if (!body.readableEnded) body.destroy();
      this.addOutstanding(-(remaining - counted));
    }
    return this.commit(id, digest, peer);
  }

  private async commit(id: string, digest: Digest, peer: PeerClient): Promise<boolean> {
    try {
      await this.blobs.commitUpload(id, digest);
    } catch (error) {
      // The upload is gone after a mismatch: the next attempt starts from zero.
      if (error instanceof DigestMismatchError)
        throw new Error(`${peer.region} sent bytes that fail ${digest}`);
      throw error;
    }
    this.metrics.blobsFetched.inc({ source_region: peer.region });
    return true;
  }

  private addOutstanding(bytes: number): void {
    this.outstandingBytes += bytes;
    this.metrics.pendingBytes.set(this.outstandingBytes);
  }
}

/** A stable upload id per digest, so that a restart resumes the same partial blob. */
export function uploadIdFor(digest: Digest): string {
  const hex = createHash("sha256").update(`replication:${digest}`).digest("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}
