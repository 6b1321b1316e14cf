// A registry on real stores in a temp folder (a filesystem blob store and a SQLite file,
// without fsync), and a content source that serves any blob or manifest it was given, as
// a peer that holds everything would. The registry unit tests and the merge-convergence
// property test build on it.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { SqliteMetadataStore } from "../metadata/sqlite-metadata-store.ts";
import { type Digest, digestOf } from "../oci/digest.ts";
import { FsBlobStore } from "../storage/fs-blob-store.ts";
import { HybridClock } from "./hybrid-clock.ts";
import { Registry } from "./registry.ts";
import { type ContentFetcher, ContentUnavailableError } from "./replicated-change.ts";

export interface RegistryFixture {
  registry: Registry;
  metadata: SqliteMetadataStore;
  blobs: FsBlobStore;
  cleanup(): Promise<void>;
}

export async function openTestRegistry(
  replicaId: string,
  options: { now?: () => number; maxClockSkewMs?: number } = {},
): Promise<RegistryFixture> {
  const dir = await mkdtemp(join(tmpdir(), `meridian-registry-${replicaId}-`));
  const blobs = await FsBlobStore.open({ root: join(dir, "store"), durable: false });
  const metadata = new SqliteMetadataStore({ path: join(dir, "metadata.db"), durable: false });
  const clock = new HybridClock(replicaId, options.now);
  const registry = new Registry({
    blobs,
    metadata,
    clock,
    maxClockSkewMs: options.maxClockSkewMs,
  });
  return {
    registry,
    metadata,
    blobs,
    cleanup: async () => {
      await metadata.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Content held "by the peers": blobs and manifests by digest; it counts what is asked for. */
export class TestContent {
  readonly blobs = new Map<Digest, Buffer>();
  readonly manifests = new Map<Digest, { mediaType: string; bytes: Buffer }>();
  readonly asked: string[] = [];

  addBlob(bytes: Buffer): Digest {
    const digest = digestOf(bytes);
    this.blobs.set(digest, bytes);
    return digest;
  }

  addManifest(mediaType: string, bytes: Buffer): Digest {
    const digest = digestOf(bytes);
    this.manifests.set(digest, { mediaType, bytes });
    return digest;
  }

  /** A fetcher that writes into `blobs` of one registry fixture. */
  fetcherFor(target: FsBlobStore): ContentFetcher {
    return {
      ensureBlob: async (digest) => {
        this.asked.push(`blob ${digest}`);
        if (await target.stat(digest)) return;
        const bytes = this.blobs.get(digest);
        if (!bytes) throw new ContentUnavailableError(`blob ${digest}`);
        await target.ingest(digest, Readable.from([bytes]));
      },
      fetchManifest: async (_repository, digest) => {
        this.asked.push(`manifest ${digest}`);
        return this.manifests.get(digest);
      },
    };
  }
}
