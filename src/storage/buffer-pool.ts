// A pool of reusable buffers: read buffers for blob sends, and the shared buffers blob
// writes copy into. Fresh multi-MiB buffers cost page faults on every use (and garbage
// that is freed late); reusing them, and reusing one only after the socket, the disk or
// the hashing thread is done with it, about doubles pull throughput over a stream that
// allocates per read and keeps a server's memory flat under many uploads.

export class BufferPool {
  private readonly free: Buffer[] = [];

  constructor(
    readonly bufferBytes: number,
    /** Buffers kept when idle; more may be lent out under load and are then dropped. */
    private readonly keep: number,
    private readonly allocate: (bytes: number) => Buffer = Buffer.allocUnsafeSlow,
  ) {}

  take(): Buffer {
    return this.free.pop() ?? this.allocate(this.bufferBytes);
  }

  give(buffer: Buffer): void {
    if (this.free.length < this.keep) this.free.push(buffer);
  }
}
