// In-process locks on content, so that writing a reference and reclaiming what nothing
// references never interleave. An operation that is about to make content referenced (an
// upload that publishes then links a blob, a mount, a manifest put that checked its blobs
// and children, a replicated manifest whose blobs are being fetched) holds the content's
// keys shared from its check until its metadata write committed. A collector takes a key
// exclusively only when nobody holds it (it never waits), re-checks the metadata under the
// lock, and only then removes; holders that come meanwhile wait for it to finish and then
// see the content gone. One replica is one process, so in-process locks suffice.
import type { Digest } from "../oci/digest.ts";

/** The key of a blob's bytes (shared by every repository). */
export function blobKey(digest: Digest): string {
  return `blob ${digest}`;
}

/** The key of a repository's manifest. */
export function manifestKey(repository: string, digest: Digest): string {
  return `manifest ${repository}@${digest}`;
}

export type Release = () => void;

export class ContentLocks {
  private readonly holders = new Map<string, number>();
  private readonly exclusive = new Map<string, Promise<void>>();

  /**
   * Holds every key shared (waiting while a collector holds one exclusively); the returned
   * function releases them, once.
   */
  async hold(keys: Iterable<string>): Promise<Release> {
    const unique = [...new Set(keys)];
    for (;;) {
      const busy = unique.flatMap((key) => this.exclusive.get(key) ?? []);
      if (busy.length === 0) break;
      await Promise.all(busy);
    }
    // No await between the check above and the count below: taking the keys is atomic.
    for (const key of unique) this.holders.set(key, (this.holders.get(key) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const key of unique) {
        const count = (this.holders.get(key) ?? 1) - 1;
        if (count <= 0) this.holders.delete(key);
        else this.holders.set(key, count);
      }
    };
  }

  /** Runs `work` holding `keys` shared. */
  async with<T>(keys: Iterable<string>, work: () => Promise<T>): Promise<T> {
    const release = await this.hold(keys);
    try {
      return await work();
    } finally {
      release();
    }
  }

  /** Takes `key` exclusively when nobody holds it; undefined when someone does. */
  tryExclusive(key: string): Release | undefined {
    if (this.holders.has(key) || this.exclusive.has(key)) return undefined;
    let done: () => void = () => {};
    this.exclusive.set(
      key,
      new Promise<void>((resolve) => {
        done = resolve;
      }),
    );
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.exclusive.delete(key);
      done();
    };
  }

  /** Whether anyone holds `key` (shared or exclusive). */
  isHeld(key: string): boolean {
    return this.holders.has(key) || this.exclusive.has(key);
  }
}
