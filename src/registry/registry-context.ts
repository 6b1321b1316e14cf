// What the repository operations share: the two stores, the clock that stamps every
// change, the optional source of content this replica lacks, and the content locks.
import type { MetadataStore } from "../metadata/metadata-store.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import type { ContentLocks } from "./content-locks.ts";
import type { ContentSource } from "./content-source.ts";
import type { HybridClock } from "./hybrid-clock.ts";

export interface RegistryContext {
  blobs: BlobStore;
  metadata: MetadataStore;
  clock: HybridClock;
  /** Remote stamps further ahead of local wall time than this are refused. */
  maxClockSkewMs: number;
  contentSource?: ContentSource | undefined;
  /** Held while a reference is being written; the collector takes them exclusively. */
  locks: ContentLocks;
}
