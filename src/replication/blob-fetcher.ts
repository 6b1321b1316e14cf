// Brings blobs from peers into the local blob store: streamed, verified by digest (the
// blob store's upload commit), resumed with Range after an interruption (the partial
// bytes live in an upload session named after the digest), deduplicated so that each
// blob crosses to this replica once however many repositories and tags use it. A transfer
// can be read while it arrives (read-through GETs join it; see BlobTransfer). Among the
// processes of one replica, a claim (fetch-claims.ts) says which one fetches a blob; the
// others wait for it to be stored.
import { Readable, type Writable } from "node:stream";
import { setTimeout as delay } from "node:timers/promises";
import type { Digest } from "../oci/digest.ts";
import { type BlobIntake, DigestMismatchError } from "../registry/blob-intake.ts";
import { ContentUnavailableError } from "../registry/replicated-change.ts";
import { BlobTransfer, type TransferReader } from "./blob-transfer.ts";
import type { FetchClaims } from "./fetch-claims.ts";
import type { PeerClient } from "./peer-client.ts";
import type { ReplicationMetrics } from "./replication-metrics.ts";
import { TransferRate } from "./transfer-rate.ts";

/** A blob transfer that receives nothing for this long is abandoned (and later resumed). */
const stallMs = 20_000;

/** How often a process waiting for another's fetch of a blob looks whether it is stored. */
const claimedPollMs = 200;

interface InflightFetch {
  done: Promise<void>;
  transfer: BlobTransfer;
}

export class BlobFetcher {
  private readonly inflight = new Map<Digest, InflightFetch>();
  private outstandingBytes = 0;
  /** How fast blob bytes arrive, for the time-left estimate of a syncing replica. */
  readonly rate = new TransferRate();
  /** Aborted by close(): every transfer in progress stops (its partial bytes stay). */
  private readonly closing = new AbortController();

  constructor(
    private readonly intake: BlobIntake,
    private readonly peers: readonly PeerClient[],
    private readonly metrics: ReplicationMetrics,
    /** Shared with the replica's other processes; none: this process is the only one. */
    private readonly claims?: FetchClaims,
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
    return this.start(digest, preferred).done;
  }

  /**
   * Writes the blob into `sink` while it is fetched (the transfer already in flight for
   * it, or a new one), holding back its last byte until it verified; see BlobTransfer.
   * `reader.finalize` runs once the blob is stored, before that last byte goes.
   */
  async sendTo(
    digest: Digest,
    preferred: PeerClient,
    sink: Writable,
    reader: TransferReader,
  ): Promise<void> {
    const { transfer, done } = this.start(digest, preferred);
    // The outcome reaches the reader through the transfer; this only keeps the rejection handled.
    done.catch(() => undefined);
    await transfer.sendTo(sink, reader);
  }

  /**
   * Takes a small blob a peer sent inside its feed record: stored once verified (bytes
   * that fail the digest are fetched from the peers instead); joins a transfer of it
   * already under way.
   */
  accept(digest: Digest, bytes: Buffer, from: PeerClient): Promise<void> {
    return this.start(digest, from, bytes).done;
  }

  private start(digest: Digest, preferred?: PeerClient, inline?: Buffer): InflightFetch {
    const running = this.inflight.get(digest);
    if (running) return running;
    const transfer = new BlobTransfer(digest, this.intake);
    const done = this.fetch(digest, transfer, preferred, inline).then(
      () => transfer.settle(),
      (error: unknown) => {
        transfer.settle(error as Error);
        throw error;
      },
    );
    const entry: InflightFetch = {
      transfer,
      done: done.finally(() => {
        this.inflight.delete(digest);
        this.metrics.pendingBlobs.set(this.inflight.size);
      }),
    };
    this.inflight.set(digest, entry);
    this.metrics.pendingBlobs.set(this.inflight.size);
    return entry;
  }

  private async fetch(
    digest: Digest,
    transfer: BlobTransfer,
    preferred?: PeerClient,
    inline?: Buffer,
  ) {
    if (await this.intake.stored(digest)) return;
    if (inline && preferred && (await this.ingestInline(digest, inline, preferred))) return;
    if (!this.claims) return this.fetchFromPeers(digest, transfer, preferred);
    for (;;) {
      const claim = await this.claims.claim(digest);
      if (claim) {
        try {
          // Stored by the one that held the claim just before.
          if (await this.intake.stored(digest)) return;
          return await this.fetchFromPeers(digest, transfer, preferred);
        } finally {
          await claim.release();
        }
      }
      // Another process of this replica fetches it: it is here once stored there (or this
      // one claims it when that one gives up or dies).
      await delay(claimedPollMs, undefined, { signal: this.closing.signal });
      if (await this.intake.stored(digest)) return;
    }
  }

  private async fetchFromPeers(digest: Digest, transfer: BlobTransfer, preferred?: PeerClient) {
    const order = preferred
      ? [preferred, ...this.peers.filter((p) => p !== preferred)]
      : [...this.peers];
    const failures: string[] = [];
    for (const peer of order) {
      this.closing.signal.throwIfAborted();
      try {
        if (await this.fetchFrom(peer, digest, transfer)) return;
        failures.push(`${peer.region}: not there`);
      } catch (error) {
        failures.push(`${peer.region}: ${(error as Error).message}`);
        transfer.attemptFailed(error as Error);
      }
    }
    throw new ContentUnavailableError(`blob ${digest} (${failures.join("; ")})`);
  }

  /** True when the blob is now present; false when this peer does not have it. */
  private async fetchFrom(
    peer: PeerClient,
    digest: Digest,
    transfer: BlobTransfer,
  ): Promise<boolean> {
    const signal = this.closing.signal;
    const received = await this.intake.resume(digest);
    const opened = await peer.openBlob(digest, received, signal);
    if (!opened) {
      if (received > 0) return this.commit(digest, peer);
      return false;
    }
    let offset = received;
    if (opened.start !== received) {
      // The peer ignored the range and sends the whole blob: the partial bytes go.
      await this.intake.restart(digest);
      offset = 0;
    }
    transfer.begin(opened.total, offset);
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
    // comes. The transfer's readers are told as the bytes land in the file, so that the
    // body streams in one append: appending in pieces stalled the socket at every piece
    // (0.83 of a 100 MB/s link with 4 MiB pieces, 0.96 in one append).
    const { metrics, rate } = this;
    const addOutstanding = (bytes: number) => this.addOutstanding(bytes);
    async function* countedBody(): AsyncGenerator<Buffer> {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        watchStall();
        counted += chunk.length;
        rate.add(chunk.length);
        metrics.bytesReceived.inc({ source_region: peer.region }, chunk.length);
        addOutstanding(-chunk.length);
        transfer.receive(chunk);
        yield chunk;
      }
    }
    const start = offset;
    try {
      watchStall();
      offset = await this.intake.append(digest, offset, Readable.from(countedBody()), {
        signal,
        onWritten: (bytes) => transfer.confirm(start + bytes),
      });
      transfer.confirm(offset);
    } finally {
      clearTimeout(stallTimer);
      if (!body.readableEnded) body.destroy();
      this.addOutstanding(-(remaining - counted));
    }
    return this.commit(digest, peer);
  }

  /** False when the inline bytes fail the digest (the peers are asked then). */
  private async ingestInline(digest: Digest, bytes: Buffer, from: PeerClient): Promise<boolean> {
    try {
      await this.intake.ingest(digest, bytes);
    } catch (error) {
      if (error instanceof DigestMismatchError) return false;
      throw error;
    }
    this.metrics.bytesReceived.inc({ source_region: from.region }, bytes.length);
    this.metrics.blobsFetched.inc({ source_region: from.region });
    return true;
  }

  private async commit(digest: Digest, peer: PeerClient): Promise<boolean> {
    try {
      await this.intake.publish(digest);
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
