// "The newest request on an upload wins" for the object-store drivers, within one process:
// an upload's appends and commit run one at a time, and a newer request destroys the
// sources of the appends in flight or waiting, so that a client that stalls mid-body
// cannot hold the upload (its own retry, a cancel, the expiry sweep) forever. Across
// processes the stored state is the arbiter: an append checks the received size first.
import type { Readable } from "node:stream";
import { UploadSupersededError } from "./blob-store.ts";
import { KeyedLock } from "./keyed-lock.ts";

export class UploadAppendGuard {
  private readonly locks = new KeyedLock();
  private readonly sources = new Map<string, Set<Readable>>();

  /** Runs an append of `source` to upload `id` once the appends before it are abandoned. */
  append<T>(id: string, source: Readable, work: () => Promise<T>): Promise<T> {
    this.abandon(id, new UploadSupersededError(id));
    const sources = this.sources.get(id) ?? new Set<Readable>();
    sources.add(source);
    this.sources.set(id, sources);
    const release = () => {
      const current = this.sources.get(id);
      current?.delete(source);
      if (current?.size === 0) this.sources.delete(id);
    };
    return this.locks
      .run(id, async () => {
        // Abandoned while it waited: a newer request has the upload now.
        if (source.destroyed) throw source.errored ?? new UploadSupersededError(id);
        return await work();
      })
      .finally(release);
  }

  /** Runs a commit or delete of `id`, abandoning its appends with `reason`. */
  exclusive<T>(id: string, reason: Error, work: () => Promise<T>): Promise<T> {
    this.abandon(id, reason);
    return this.locks.run(id, work);
  }

  private abandon(id: string, reason: Error): void {
    const sources = this.sources.get(id);
    if (!sources) return;
    this.sources.delete(id);
    for (const source of sources) {
      // An append still waiting for the lock has nobody listening for the error yet; it
      // finds the error on the destroyed source when its turn comes.
      source.on("error", () => undefined);
      source.destroy(reason);
    }
  }
}
