// A change as it travels between replicas: what a change-log record says, with the
// manifest bytes inlined for manifest puts, and the client request of a push or delete
// (which the webhooks of every region name). Replication carries these; the registry
// applies them through RemoteApplier.
import type { ChangeRequest, Stamp } from "../metadata/metadata-store.ts";
import type { Digest } from "../oci/digest.ts";

export type ReplicatedChange =
  | { kind: "blob-link"; repository: string; digest: Digest; stamp: Stamp }
  | { kind: "blob-unlink"; repository: string; digest: Digest; stamp: Stamp }
  /** An unlink a collector wrote: a stored manifest referencing the blob still serves it. */
  | { kind: "blob-expire"; repository: string; digest: Digest; stamp: Stamp }
  | {
      kind: "manifest-put";
      repository: string;
      digest: Digest;
      stamp: Stamp;
      mediaType: string;
      bytes: Buffer;
      request?: ChangeRequest | undefined;
    }
  | {
      kind: "manifest-delete";
      repository: string;
      digest: Digest;
      stamp: Stamp;
      request?: ChangeRequest | undefined;
    }
  /** A retention delete: a region where a stored index lists the manifest puts it again. */
  | { kind: "manifest-expire"; repository: string; digest: Digest; stamp: Stamp }
  | {
      kind: "tag-put";
      repository: string;
      tag: string;
      digest: Digest;
      stamp: Stamp;
      request?: ChangeRequest | undefined;
    }
  | {
      kind: "tag-delete";
      repository: string;
      tag: string;
      stamp: Stamp;
      request?: ChangeRequest | undefined;
    }
  | {
      kind: "control-put" | "control-delete";
      /** Which kind of control record (user, token, ...). */
      controlKind: string;
      name: string;
      /** JSON text; null for a delete. */
      value: string | null;
      stamp: Stamp;
    };

/** Where a replica gets the content a remote change needs (the peers, in practice). */
/**
 * What applying a remote change did: `tag-conflict` when it was a tag write that a newer
 * write of the same tag to another manifest, already here, supersedes (two regions wrote
 * the tag; the newest stamp won). Everything else is `applied` (or changed nothing).
 */
export type ApplyOutcome = "applied" | "tag-conflict";

export interface ContentFetcher {
  /**
   * Makes the blob present in the local blob store, verified against its digest. Throws
   * ContentUnavailableError when no source has it.
   */
  ensureBlob(digest: Digest): Promise<void>;
  /** A manifest's bytes and media type from a source, or undefined when none has it. */
  fetchManifest(
    repository: string,
    digest: Digest,
  ): Promise<{ mediaType: string; bytes: Buffer } | undefined>;
}

export class ContentUnavailableError extends Error {
  constructor(
    readonly what: string,
    options?: { cause?: unknown },
  ) {
    super(`content unavailable: ${what}`, options);
    this.name = "ContentUnavailableError";
  }
}

/**
 * A remote change whose stamp is further ahead of local wall time than the allowed clock
 * skew: its origin's clock runs ahead. It is refused rather than applied, so that it can
 * neither drag this replica's clock along nor win every conflict; once wall time has
 * caught up, anti-entropy brings it in like any missed record.
 */
export class StampTooFarAheadError extends Error {
  constructor(
    readonly stamp: string,
    readonly aheadMs: number,
  ) {
    super(`stamp ${stamp} is ${Math.round(aheadMs / 1000)} s ahead of this replica's clock`);
    this.name = "StampTooFarAheadError";
  }
}
