// The state of one blob on its way from the peers into this replica, readable while it
// arrives (a read-through GET streams the blob to its client from here).
//
// The transfer appends the peer's bytes to the digest-named upload session in one append.
// A reader finds every byte it needs in one of two places:
//
//   0 ........ written ........ received ........ total
//   |  upload file  |  pending chunks  |  not arrived  |
//
// `written` is where the last completed write ended (those bytes are in the upload
// file); the chunks after it, up to `received`, are held in memory until the write that
// holds them completes (a few MiB at most). So any number of readers can join at any time,
// from byte 0, without a second transfer from the peer: a late one reads the file first
// and catches up with the live chunks. Until the blob verified, every reader holds back
// its last byte, so that a client never receives a complete body that then fails
// verification; once the blob is committed the rest is read from the blob store.
import type { Readable, Writable } from "node:stream";
import type { Digest } from "../oci/digest.ts";
import { type BlobIntake, UploadNotFoundError } from "../registry/blob-intake.ts";

/** What a reader of a transfer promised its client, and what it does on the way. */
export interface TransferReader {
  /** The size the client was told. */
  size: number;
  /** Runs once the blob is committed, before the held-back bytes go (the caller links it). */
  finalize(): Promise<void>;
  /** Called once, right before the first byte is written (or an empty blob ends). */
  begin(): void;
}

interface PendingChunk {
  start: number;
  chunk: Buffer;
}

export class BlobTransfer {
  /** Bumped when an attempt fails and the next peer is tried from the start. */
  private attempt = 0;
  private total: number | undefined;
  private written = 0;
  private received = 0;
  private pending: PendingChunk[] = [];
  private outcome: { ok: true } | { ok: false; error: Error } | undefined;
  private lastFailure: Error | undefined;
  private wakers: (() => void)[] = [];
  /** Counts every change, so that a reader knows whether one came while it awaited. */
  private version = 0;

  constructor(
    readonly digest: Digest,
    private readonly intake: BlobIntake,
  ) {}

  /** An attempt starts: `offset` bytes are already in the upload file. */
  begin(total: number, offset: number): void {
    this.total = total;
    this.written = offset;
    this.received = offset;
    this.pending = [];
    this.notify();
  }

  /** A chunk arrived from the peer (its append is under way). */
  receive(chunk: Buffer): void {
    this.pending.push({ start: this.received, chunk });
    this.received += chunk.length;
    this.notify();
  }

  /** The upload file now holds the first `offset` bytes. */
  confirm(offset: number): void {
    this.written = offset;
    this.pending = this.pending.filter((p) => p.start + p.chunk.length > offset);
    this.notify();
  }

  /** The attempt failed; another peer may be tried from the start. */
  attemptFailed(error: Error): void {
    this.attempt += 1;
    this.lastFailure = error;
    this.total = undefined;
    this.written = 0;
    this.received = 0;
    this.pending = [];
    this.notify();
  }

  /** The blob is committed (verified and published), or no peer could bring it. */
  settle(error?: Error): void {
    this.outcome = error ? { ok: false, error } : { ok: true };
    this.pending = [];
    this.notify();
  }

  /**
   * Writes the whole blob into `sink` as it arrives (see the header and TransferReader).
   * Rejects when the transfer fails after bytes were written, when every peer failed, or
   * when the sink closes early.
   */
  async sendTo(sink: Writable, reader: TransferReader): Promise<void> {
    const { size } = reader;
    let attempt = this.attempt;
    let position = 0;
    let begun = false;
    const begin = () => {
      if (begun) return;
      begun = true;
      reader.begin();
    };
    for (;;) {
      if (this.outcome && !this.outcome.ok) throw this.outcome.error;
      if (this.attempt !== attempt) {
        if (position > 0) {
          throw new Error(
            `transfer of ${this.digest} failed after ${position} bytes were sent: ${this.lastFailure?.message}`,
            { cause: this.lastFailure },
          );
        }
        attempt = this.attempt;
      }
      if (this.outcome?.ok) {
        await reader.finalize();
        begin();
        if (position < size) {
          await this.intake.sendStored(this.digest, { start: position, end: size - 1 }, sink);
        }
        return;
      }
      if (this.total !== undefined && this.total !== size) {
        throw new Error(`${this.digest}: the peer sends ${this.total} bytes, not ${size}`);
      }
      // Everything but the last byte may go before the blob verified.
      const limit = Math.min(this.received, size - 1);
      const seen = this.version;
      if (position < limit) {
        const sent = await this.sendAvailable(sink, position, limit, begin);
        position += sent;
        if (sent > 0 || this.version !== seen) continue;
      }
      if (sink.destroyed) throw new Error("the client went away");
      await this.changed();
    }
  }

  /** Sends bytes [from, limit) from the upload file or the pending chunks; how many went. */
  private async sendAvailable(
    sink: Writable,
    from: number,
    limit: number,
    begin: () => void,
  ): Promise<number> {
    if (from < this.written) {
      const end = Math.min(this.written, limit) - 1;
      let source: Readable;
      try {
        source = await this.intake.readReceived(this.digest, { start: from, end });
      } catch (error) {
        // Committed (or failed) meanwhile: the next round finds out which.
        if (error instanceof UploadNotFoundError) return 0;
        throw error;
      }
      let sent = 0;
      try {
        for await (const chunk of source as AsyncIterable<Buffer>) {
          begin();
          await write(sink, chunk);
          sent += chunk.length;
        }
      } finally {
        source.destroy();
      }
      return sent;
    }
    let sent = 0;
    for (const { start, chunk } of this.pending) {
      const chunkEnd = start + chunk.length;
      if (chunkEnd <= from + sent || start >= limit) continue;
      const piece = chunk.subarray(from + sent - start, Math.min(chunk.length, limit - start));
      sent += piece.length;
      begin();
      // The write is awaited after the slice is taken: `pending` may change meanwhile.
      await write(sink, piece);
      if (from + sent >= limit) break;
    }
    return sent;
  }

  private changed(): Promise<void> {
    return new Promise((resolve) => this.wakers.push(resolve));
  }

  private notify(): void {
    this.version += 1;
    const wakers = this.wakers;
    this.wakers = [];
    for (const wake of wakers) wake();
  }
}

/** Writes one chunk, waiting for the sink to drain when it asks to; fails if it closes. */
function write(sink: Writable, chunk: Buffer): Promise<void> {
  if (sink.destroyed) return Promise.reject(new Error("the client went away"));
  if (sink.write(chunk)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = (error?: Error) => {
      sink.off("drain", onDrain);
      sink.off("close", onClose);
      if (error) reject(error);
      else resolve();
    };
    const onDrain = () => done();
    const onClose = () => done(new Error("the client went away"));
    sink.on("drain", onDrain);
    sink.on("close", onClose);
  });
}
