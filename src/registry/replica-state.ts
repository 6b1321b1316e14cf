// What other replicas may read of this one: the change log, the mergeable state of each
// repository, manifests and links with their stamps, and published blobs. Read-only: a
// peer's changes come in through the remote-apply path and the blob intake only.
import type { Readable } from "node:stream";
import type {
  ChangeRecord,
  CommitListener,
  ControlRecord,
  RepositoryExport,
  Stamp,
  StoredManifest,
} from "../metadata/metadata-store.ts";
import type { ByteRange } from "../oci/content-range.ts";
import type { Digest } from "../oci/digest.ts";
import type { BlobInfo } from "../storage/blob-store.ts";
import type { RegistryContext } from "./registry-context.ts";

export class ReplicaState {
  constructor(private readonly ctx: RegistryContext) {}

  changesSince(since: number, limit: number): Promise<ChangeRecord[]> {
    return this.ctx.metadata.changesSince(since, limit);
  }

  headSeq(): Promise<number> {
    return this.ctx.metadata.headSeq();
  }

  logId(): Promise<string> {
    return this.ctx.metadata.logId();
  }

  onCommit(listener: CommitListener): () => void {
    return this.ctx.metadata.onCommit(listener);
  }

  repositories(): Promise<string[]> {
    return this.ctx.metadata.listRepositories({});
  }

  stateDigest(repository: string): Promise<string> {
    return this.ctx.metadata.stateDigest(repository);
  }

  stateDigests(): Promise<Map<string, string>> {
    return this.ctx.metadata.stateDigests();
  }

  /** The blob and manifest bytes this replica stores (usage per region). */
  storedBytes(): Promise<{ blobs: number; blobBytes: number; manifestBytes: number }> {
    return this.ctx.metadata.storedBytes();
  }

  exportRepository(repository: string): Promise<RepositoryExport> {
    return this.ctx.metadata.exportRepository(repository);
  }

  /** A stored manifest by digest, or the one a tag names, with their stamps. */
  manifest(
    repository: string,
    reference: { digest: Digest } | { tag: string },
  ): Promise<StoredManifest | undefined> {
    return "digest" in reference
      ? this.ctx.metadata.getManifest(repository, reference.digest)
      : this.ctx.metadata.getTaggedManifest(repository, reference.tag);
  }

  /** The repository's live link of a blob this replica holds, with its stamp. */
  async blobLink(
    repository: string,
    digest: Digest,
  ): Promise<{ size: number; stamp: Stamp } | undefined> {
    const link = await this.ctx.metadata.getBlobLink(repository, digest);
    if (!link || !(await this.ctx.blobs.stat(digest))) return undefined;
    return link;
  }

  /** The stamp of the repository's link register for a blob (linked or not). */
  blobLinkStamp(repository: string, digest: Digest): Promise<Stamp | undefined> {
    return this.ctx.metadata.blobLinkStamp(repository, digest);
  }

  /** The control record's current register, or undefined when never written. */
  async controlRecord(kind: string, name: string): Promise<ControlRecord | undefined> {
    return (await this.ctx.metadata.controlRecords(kind)).find((r) => r.name === name);
  }

  blob(digest: Digest): Promise<BlobInfo | undefined> {
    return this.ctx.blobs.stat(digest);
  }

  /** The published blob's bytes (or `range` of them). Throws BlobNotFoundError. */
  readBlob(digest: Digest, range?: ByteRange): Promise<Readable> {
    return this.ctx.blobs.read(digest, range);
  }
}
