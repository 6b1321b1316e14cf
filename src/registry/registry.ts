// The registry core: one replica's repository operations, built on a blob store and a
// metadata store. It knows nothing of regions; replication, routing and webhooks plug in
// through the commit listeners of the metadata store and the optional content source.
import type { MetadataStore, Page } from "../metadata/metadata-store.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import { BlobIntake } from "./blob-intake.ts";
import { BlobOperations } from "./blob-operations.ts";
import { ContentLocks } from "./content-locks.ts";
import type { ContentSource } from "./content-source.ts";
import { ControlRecords } from "./control-records.ts";
import type { HybridClock } from "./hybrid-clock.ts";
import { ManifestOperations } from "./manifest-operations.ts";
import type { RegistryContext } from "./registry-context.ts";
import { RemoteApplier } from "./remote-applier.ts";
import { ReplicaState } from "./replica-state.ts";
import { UploadOperations } from "./upload-operations.ts";

export interface RegistryOptions {
  blobs: BlobStore;
  metadata: MetadataStore;
  clock: HybridClock;
  /** Remote stamps further ahead of local wall time than this are refused (default 60 s). */
  maxClockSkewMs?: number | undefined;
  contentSource?: ContentSource | undefined;
}

export class Registry {
  readonly blobs: BlobOperations;
  readonly uploads: UploadOperations;
  readonly manifests: ManifestOperations;
  /** The one entry for changes made in other replicas. */
  readonly remote: RemoteApplier;
  /** The one entry for blob bytes from other replicas. */
  readonly intake: BlobIntake;
  /** What other replicas may read of this one. */
  readonly state: ReplicaState;
  /** The control plane's records (users, tokens, ...). */
  readonly control: ControlRecords;
  /** Content locks: garbage collection takes them exclusively before it removes anything. */
  readonly locks: ContentLocks;

  readonly clock: HybridClock;
  private readonly ctx: RegistryContext;

  constructor(options: RegistryOptions) {
    const ctx: RegistryContext = {
      ...options,
      maxClockSkewMs: options.maxClockSkewMs ?? 60_000,
      locks: new ContentLocks(),
    };
    this.locks = ctx.locks;
    this.ctx = ctx;
    this.clock = options.clock;
    this.intake = new BlobIntake(options.blobs);
    this.state = new ReplicaState(ctx);
    this.control = new ControlRecords(options.metadata, options.clock);
    this.blobs = new BlobOperations(ctx);
    this.uploads = new UploadOperations(ctx, this.blobs);
    this.manifests = new ManifestOperations(ctx);
    this.remote = new RemoteApplier(ctx);
  }

  /**
   * Installs the source asked for content this replica lacks (split pushes,
   * read-through); the composition root calls it once replication exists.
   */
  useContentSource(source: ContentSource): void {
    this.ctx.contentSource = source;
  }

  /** Repository names in lexical order. */
  catalog(page: Page): Promise<string[]> {
    return this.ctx.metadata.listRepositories(page);
  }
}
