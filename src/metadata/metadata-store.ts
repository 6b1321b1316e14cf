// The metadata-store seam: repositories, blob links, manifests, tags, tombstones and the
// change log. Each method is one atomic domain operation that also appends its
// change-log record in the same transaction; drivers announce every commit to the
// listeners registered with onCommit (replication feeds, webhooks and metrics listen).
// Every driver passes the shared suite in metadata-store-suite.ts.
import type { Digest } from "../oci/digest.ts";

/** A hybrid-logical-clock stamp; comparing two stamps as strings orders them. */
export type Stamp = string;

export interface BlobLink {
  repository: string;
  digest: Digest;
  size: number;
  stamp: Stamp;
}

export interface ManifestRecord {
  repository: string;
  digest: Digest;
  mediaType: string;
  bytes: Buffer;
  /** Blobs the manifest needs (config, layers). */
  blobs: Digest[];
  /** Child manifests (of an index). */
  manifests: Digest[];
  subject?: Digest | undefined;
  artifactType?: string | undefined;
  annotations?: Record<string, string> | undefined;
  stamp: Stamp;
  /** The client request that made the put, kept on its change-log records (not state). */
  request?: ChangeRequest | undefined;
}

/**
 * The client request that made a change, as webhooks name it (ACR's `request`): kept on
 * the change-log record at the origin and carried to every region with the record.
 */
export interface ChangeRequest {
  id: string;
  host: string;
  method: string;
  useragent: string;
}

/** Options of the writes a client request makes. */
export interface WriteOptions {
  request?: ChangeRequest | undefined;
}

export interface StoredManifest {
  digest: Digest;
  mediaType: string;
  bytes: Buffer;
  subject?: Digest | undefined;
  /** Stamp of the manifest's newest put. */
  stamp: Stamp;
  /** When looked up by tag: the stamp of the tag's write. */
  tagStamp?: Stamp;
}

export interface Referrer {
  mediaType: string;
  digest: Digest;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export interface Page {
  /** Return only entries after this one (lexically). */
  last?: string | undefined;
  /** At most this many entries. */
  limit?: number | undefined;
}

export type ChangeKind =
  | "control-put"
  | "control-delete"
  | "blob-link"
  | "blob-unlink"
  | "blob-expire"
  | "manifest-put"
  | "manifest-delete"
  | "manifest-expire"
  | "tag-put"
  | "tag-delete";

export interface ChangeRecord {
  /** Local sequence number: the position in this replica's change log. */
  seq: number;
  stamp: Stamp;
  kind: ChangeKind;
  repository: string;
  /** Digest of the blob or manifest the change is about. */
  digest?: Digest | undefined;
  tag?: string | undefined;
  /** For control-put and control-delete: which record (repository is then `_control:<kind>`). */
  control?: { kind: string; name: string } | undefined;
  /** The client request that made the change, when a client did (absent for history). */
  request?: ChangeRequest | undefined;
}

/** A control-plane record (a user, a token, ...): value undefined once deleted. */
export interface ControlRecord {
  kind: string;
  name: string;
  /** JSON text, or null for a deleted record (a tombstone). */
  value: string | null;
  stamp: Stamp;
}

/** The pseudo-repository under which state digests and exports carry control records. */
export const controlRepository = "_control";

/** A repository's whole mergeable state: every register with its stamp. */
export interface RepositoryExport {
  manifests: { digest: Digest; mediaType: string; bytes: Buffer; stamp: Stamp }[];
  tags: { tag: string; digest: Digest | null; stamp: Stamp }[];
  /** Manifest deletes; `expired` (only when true) marks a retention delete. */
  tombstones: { digest: Digest; stamp: Stamp; expired?: boolean }[];
  /**
   * Blob-link registers: linked, or unlinked (a tombstone); `expired` (only when true) marks
   * an unlink the collector wrote.
   */
  links: { digest: Digest; linked: boolean; stamp: Stamp; expired?: boolean }[];
  /** Control-plane registers (only in the export of `controlRepository`). */
  controls?: ControlRecord[] | undefined;
}

/** A blob link register's key. */
export interface LinkKey {
  repository: string;
  digest: Digest;
}

export interface LinkRow extends LinkKey {
  size: number;
  stamp: Stamp;
}

/** A stored manifest as retention sees it. */
export interface ManifestNode {
  digest: Digest;
  /** Stamp of the newest put: the manifest's age. */
  stamp: Stamp;
  size: number;
  /** Whether a visible tag names it. */
  tagged: boolean;
  /** Child manifests (of an index). */
  children: Digest[];
  subject?: Digest | undefined;
}

export interface RepositoryUsage {
  repository: string;
  links: number;
  linkedBytes: number;
  manifests: number;
  manifestBytes: number;
}

export type CommitListener = (changes: readonly ChangeRecord[]) => void;

export interface MetadataStore {
  /**
   * Writes the blob-link register of (repository, digest) as linked, unless it holds a
   * stamp at least as new (a newer link or unlink): then nothing changes and no change
   * record is written. Whether the register changed.
   */
  linkBlob(link: BlobLink): Promise<boolean>;
  /** The live link's size and stamp, or undefined when the repository does not link the blob. */
  getBlobLink(
    repository: string,
    digest: Digest,
  ): Promise<{ size: number; stamp: Stamp } | undefined>;
  /** The stamp of the blob-link register (linked or unlinked), or undefined when never written. */
  blobLinkStamp(repository: string, digest: Digest): Promise<Stamp | undefined>;
  /**
   * Writes the register as unlinked (a tombstone) unless it holds a stamp at least as new,
   * whether or not a link exists here yet (the link may arrive later, and must then lose).
   * Returns whether a live link was removed. `expired`: the unlink is a collector's (a
   * `blob-expire` record), which a stored manifest referencing the blob overrides for
   * serving; a client's unlink makes the blob unservable from the repository.
   */
  unlinkBlob(
    repository: string,
    digest: Digest,
    stamp: Stamp,
    options?: { expired?: boolean },
  ): Promise<boolean>;
  /**
   * Of `digests`, those the repository can serve neither by a link nor by `servedByManifest`.
   */
  missingBlobs(repository: string, digests: readonly Digest[]): Promise<Digest[]>;
  /** Whether a stored manifest of the repository references `digest` as a blob. */
  referencedByManifest(repository: string, digest: Digest): Promise<boolean>;
  /** Whether a stored index of the repository lists the manifest `digest` as a child. */
  listedByIndex(repository: string, digest: Digest): Promise<boolean>;
  /**
   * Whether the repository serves the blob without a live link: a stored manifest of it
   * references the blob and its link register is not a client's unlink (never written, or
   * expired by a collector, here or in a region that did not have the manifest yet).
   */
  servedByManifest(repository: string, digest: Digest): Promise<boolean>;
  /** Of `digests`, the manifests the repository does not hold. */
  missingManifests(repository: string, digests: readonly Digest[]): Promise<Digest[]>;

  /**
   * Stores a manifest (unless a tombstone with a newer stamp holds it deleted; a stored
   * manifest takes the newer stamp) and, when `tag` is given, points the tag at it unless
   * the tag holds a newer stamp. One transaction. The caller has checked that everything
   * the manifest references is present.
   */
  putManifest(manifest: ManifestRecord, tag?: string): Promise<void>;
  /**
   * Writes a tag (last writer wins). False when the manifest is unknown here (neither
   * stored nor deleted): content comes before pointers, so the caller fetches it first.
   */
  setTag(
    repository: string,
    tag: string,
    digest: Digest,
    stamp: Stamp,
    options?: WriteOptions,
  ): Promise<boolean>;
  getManifest(repository: string, digest: Digest): Promise<StoredManifest | undefined>;
  /** The manifest a tag points to, or undefined. */
  getTaggedManifest(repository: string, tag: string): Promise<StoredManifest | undefined>;
  /**
   * Records a manifest delete: the manifest disappears unless a newer put keeps it, and
   * every tag write to it older than `stamp` is hidden, whatever the arrival order.
   * Returns whether a stored manifest was removed. `expired`: a retention delete (a
   * `manifest-expire` record), which a region where a stored index lists the manifest
   * answers with a newer put.
   */
  deleteManifest(
    repository: string,
    digest: Digest,
    stamp: Stamp,
    options?: { expired?: boolean } & WriteOptions,
  ): Promise<boolean>;
  /** Whether the manifest's newest delete is a retention delete (undefined: none). */
  manifestExpired(repository: string, digest: Digest): Promise<boolean | undefined>;
  /** Deletes one tag unless it holds a newer stamp (tombstone); whether anything changed. */
  deleteTag(
    repository: string,
    tag: string,
    stamp: Stamp,
    options?: WriteOptions,
  ): Promise<boolean>;
  /**
   * A digest of the repository's whole mergeable state (every register of tags, manifests,
   * manifest tombstones and blob links, with its stamp): two replicas that have seen the
   * same records give the same value.
   */
  stateDigest(repository: string): Promise<string>;
  /**
   * The state digest of every repository, in one pass (anti-entropy compares them all),
   * with the control records under `controlRepository` when there are any.
   */
  stateDigests(): Promise<Map<string, string>>;

  /**
   * What this replica stores: the distinct blobs any repository links, with their bytes,
   * and the bytes of its manifests (each digest counted once, as the bytes are kept once).
   */
  storedBytes(): Promise<{ blobs: number; blobBytes: number; manifestBytes: number }>;

  /**
   * Writes a control record's register (value null deletes it) unless it holds a stamp at
   * least as new; whether it changed. One transaction with its change-log record.
   */
  putControlRecord(record: ControlRecord): Promise<boolean>;
  /** The control records of a kind, tombstones included, by name. */
  controlRecords(kind: string): Promise<ControlRecord[]>;

  /** The repository's tags in lexical order, or undefined when the repository is unknown. */
  listTags(repository: string, page: Page): Promise<string[] | undefined>;
  /**
   * All of `listTags(repository, {})` as the text of a JSON array of strings, the form a
   * tag list is sent in, so that a large listing needs no string per tag in between.
   */
  listTagsJson(repository: string): Promise<string | undefined>;
  /** Repositories in lexical order. */
  listRepositories(page: Page): Promise<string[]>;
  /** Manifests of the repository whose `subject` is `digest`, optionally by artifact type. */
  listReferrers(repository: string, digest: Digest, artifactType?: string): Promise<Referrer[]>;

  /** Change-log records with seq > `since`, oldest first. */
  changesSince(since: number, limit: number): Promise<ChangeRecord[]>;
  /**
   * The identity of this change log, made once with the store: a follower whose
   * checkpoint belongs to another log (the peer's data was replaced) starts over.
   */
  logId(): Promise<string>;
  /** The seq of the newest change-log record (0 when empty). */
  headSeq(): Promise<number>;
  /**
   * The repository's whole mergeable state (manifests with bytes, tag registers,
   * tombstones, blob-link registers), for anti-entropy repairs.
   */
  exportRepository(repository: string): Promise<RepositoryExport>;
  /** The highest stamp this store has recorded, to seed the clock after a restart. */
  latestStamp(): Promise<Stamp | undefined>;
  // Garbage collection: reads that page by key, and writes that re-check in their own
  // transaction what the collector saw, so that a concurrent push wins.
  /**
   * A page of live blob links (ordered by repository, digest, after `after`) whose stamp is
   * older than `olderThan` and that no stored manifest of their repository references.
   */
  expirableLinks(olderThan: Stamp, after: LinkKey | undefined, limit: number): Promise<LinkRow[]>;
  /**
   * Unlinks the blob (a stamped `blob-expire` that replicates like an unlink) if the live link still has
   * `linkStamp` and still no stored manifest of the repository references the blob; whether
   * it did.
   */
  expireBlobLink(key: LinkKey, linkStamp: Stamp, stamp: Stamp): Promise<boolean>;
  /**
   * Of `digests`, those nothing here references: no live link in any repository, no stored
   * manifest referencing them, and no unlink at or after `olderThan` (a blob unlinked within
   * the grace period may be linked again by a push or a replicated record on its way).
   */
  unreferencedBlobs(digests: readonly Digest[], olderThan: Stamp): Promise<Digest[]>;
  /** Every stored manifest of the repository with what retention needs to know of it. */
  manifestGraph(repository: string): Promise<ManifestNode[]>;
  /**
   * Deletes the manifest (a stamped `manifest-expire` that replicates like a delete) if its newest put still
   * has `putStamp`, no visible tag names it and no stored manifest lists it as a child;
   * whether it did.
   */
  expireManifest(
    repository: string,
    digest: Digest,
    putStamp: Stamp,
    stamp: Stamp,
  ): Promise<boolean>;
  /** Per repository: live links and their bytes, stored manifests and their bytes. */
  repositoryUsage(): Promise<RepositoryUsage[]>;

  /** Registers a listener called after every commit; returns the unsubscribe function. */
  onCommit(listener: CommitListener): () => void;
  close(): Promise<void>;
}
