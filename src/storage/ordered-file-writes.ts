// Writes a stream's buffers into a file at consecutive positions, one system call at a
// time and in order, so that the file is always a prefix of the stream (a crash must not
// leave a hole that a resumed upload would build on). Buffers queued while a write is in
// flight go out together in one writev: a lone fast upload makes as few system calls with
// 128 KiB slots as it did with 1 MiB ones, while many slow ones each hold little memory.
import type { FileHandle } from "node:fs/promises";

/** Buffers per writev: 8 slots of 128 KiB, the 1 MiB write of before. */
const maxBatch = 8;

interface Queued {
  bytes: Buffer;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class OrderedFileWrites {
  private readonly queue: Queued[] = [];
  private pumping = false;
  private failure: unknown;
  private failed = false;
  private position: number;
  private last: Promise<void> = Promise.resolve();

  constructor(
    private readonly handle: FileHandle,
    start: number,
    /** Told, in order, the file position up to which the bytes are written. */
    private readonly onWritten?: (position: number) => void,
  ) {
    this.position = start;
  }

  /**
   * Queues `bytes` after everything queued before; settles once they are in the file.
   * After a failed write every queued and later write rejects with its error.
   */
  write(bytes: Buffer): Promise<void> {
    const written = new Promise<void>((resolve, reject) => {
      if (this.failed) reject(this.failure);
      else this.queue.push({ bytes, resolve, reject });
    });
    this.last = written;
    if (!this.pumping) void this.pump();
    return written;
  }

  /** Settles once every write queued so far is in the file (rejects if one failed). */
  settled(): Promise<void> {
    return this.last;
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, maxBatch);
        try {
          this.position += await writevFully(
            this.handle,
            batch.map((queued) => queued.bytes),
            this.position,
          );
        } catch (error) {
          this.failed = true;
          this.failure = error;
          for (const queued of [...batch, ...this.queue.splice(0)]) queued.reject(error);
          return;
        }
        this.onWritten?.(this.position);
        for (const queued of batch) queued.resolve();
      }
    } finally {
      this.pumping = false;
    }
  }
}

/** Writes all of `buffers` at `position`, going on after short writes; returns the bytes. */
async function writevFully(
  handle: FileHandle,
  buffers: Buffer[],
  position: number,
): Promise<number> {
  let total = 0;
  for (const buffer of buffers) total += buffer.length;
  let written = 0;
  let pending = buffers;
  while (written < total) {
    const { bytesWritten } = await handle.writev(pending, position + written);
    written += bytesWritten;
    if (written < total) pending = after(buffers, written);
  }
  return total;
}

/** What is left of `buffers` past their first `skip` bytes. */
function after(buffers: Buffer[], skip: number): Buffer[] {
  const left: Buffer[] = [];
  let rest = skip;
  for (const buffer of buffers) {
    if (rest >= buffer.length) {
      rest -= buffer.length;
      continue;
    }
    left.push(rest > 0 ? buffer.subarray(rest) : buffer);
    rest = 0;
  }
  return left;
}
