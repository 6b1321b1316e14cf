// The one path by which changes made in other replicas enter this one. It enforces
// content before pointers: a manifest is stored only once every blob and child manifest
// it references is present, and a tag only once its manifest is; the metadata store's
// merge rules then make the arrival order irrelevant. Applying a change twice changes
// nothing.
import type { ChangeRequest } from "../metadata/metadata-store.ts";
import { type Digest, digestAlgorithm, digestOf } from "../oci/digest.ts";
import { parseManifest } from "../oci/manifest.ts";
import { blobKey, manifestKey } from "./content-locks.ts";
import { manifestRecord } from "./manifest-record.ts";
import type { RegistryContext } from "./registry-context.ts";
import {
  type ApplyOutcome,
  type ContentFetcher,
  ContentUnavailableError,
  type ReplicatedChange,
  StampTooFarAheadError,
} from "./replicated-change.ts";

/** How deep an index of indexes may nest before it is refused (cycles cannot exist). */
const maxIndexDepth = 8;

export class RemoteApplier {
  constructor(private readonly ctx: RegistryContext) {}

  /**
   * Applies one remote change. Throws StampTooFarAheadError (before anything changes, the
   * clock included) for a stamp beyond the allowed skew, ContentUnavailableError when the
   * content it needs cannot be had.
   */
  async apply(change: ReplicatedChange, fetcher: ContentFetcher): Promise<ApplyOutcome> {
    const aheadMs = this.ctx.clock.aheadOfWallMs(change.stamp);
    if (aheadMs > this.ctx.maxClockSkewMs) throw new StampTooFarAheadError(change.stamp, aheadMs);
    this.ctx.clock.observe(change.stamp);
    const { metadata } = this.ctx;
    switch (change.kind) {
      case "blob-link":
        await this.linkBlob(change.repository, change.digest, change.stamp, fetcher);
        return "applied";
      case "blob-unlink":
      case "blob-expire":
        await metadata.unlinkBlob(change.repository, change.digest, change.stamp, {
          expired: change.kind === "blob-expire",
        });
        return "applied";
      case "manifest-put":
        await this.putManifest(change, fetcher, 0);
        return "applied";
      case "manifest-delete":
        await metadata.deleteManifest(change.repository, change.digest, change.stamp, {
          request: change.request,
        });
        return "applied";
      case "manifest-expire":
        await this.expireManifest(change.repository, change.digest, change.stamp);
        return "applied";
      case "tag-put":
        return this.putTag(change, fetcher);
      case "tag-delete":
        await metadata.deleteTag(change.repository, change.tag, change.stamp, {
          request: change.request,
        });
        return "applied";
      case "control-put":
      case "control-delete":
        await metadata.putControlRecord({
          kind: change.controlKind,
          name: change.name,
          value: change.kind === "control-put" ? change.value : null,
          stamp: change.stamp,
        });
        return "applied";
    }
  }

  private async linkBlob(
    repository: string,
    digest: Digest,
    stamp: string,
    fetcher: ContentFetcher,
  ) {
    // A link no newer than the register's stamp changes nothing: do not fetch for it.
    const current = await this.ctx.metadata.blobLinkStamp(repository, digest);
    if (current !== undefined && current >= stamp) return;
    // Held from the check of the bytes to the link: the collector cannot take them between.
    await this.ctx.locks.with([blobKey(digest)], async () => {
      const info = await this.ensureStored(digest, fetcher);
      await this.ctx.metadata.linkBlob({ repository, digest, size: info.size, stamp });
    });
  }

  /** The blob's bytes here, fetched when absent; throws ContentUnavailableError. */
  private async ensureStored(digest: Digest, fetcher: ContentFetcher): Promise<{ size: number }> {
    let info = await this.ctx.blobs.stat(digest);
    if (!info) {
      await fetcher.ensureBlob(digest);
      info = await this.ctx.blobs.stat(digest);
      if (!info) throw new ContentUnavailableError(`blob ${digest}`);
    }
    return info;
  }

  private async putManifest(
    change: {
      repository: string;
      digest: Digest;
      stamp: string;
      mediaType: string;
      bytes: Buffer;
      request?: ChangeRequest | undefined;
    },
    fetcher: ContentFetcher,
    depth: number,
  ): Promise<void> {
    const { repository, digest, stamp, bytes } = change;
    if (digestOf(bytes, digestAlgorithm(digest)) !== digest) {
      throw new ContentUnavailableError(`manifest ${digest}: bytes do not match the digest`);
    }
    const parsed = parseManifest(bytes, change.mediaType);
    // What the manifest references is held until it is stored: a pending replicated
    // manifest keeps its blobs and children from the collector while they arrive.
    const keys = [
      manifestKey(repository, digest),
      ...parsed.blobs.map(blobKey),
      ...parsed.manifests.map((child) => manifestKey(repository, child)),
    ];
    await this.ctx.locks.with(keys, async () => {
      // Blobs first, in parallel; each crosses once however many manifests name it. The
      // bytes must be here even when the link register holds a newer unlink (a link
      // expired by a collector elsewhere): the stored manifest makes them servable.
      await Promise.all(
        parsed.blobs.map(async (blob) => {
          if (await this.ctx.metadata.getBlobLink(repository, blob)) return;
          await this.linkBlob(repository, blob, stamp, fetcher);
          await this.ensureStored(blob, fetcher);
        }),
      );
      for (const child of await this.ctx.metadata.missingManifests(repository, parsed.manifests)) {
        if (depth >= maxIndexDepth)
          throw new ContentUnavailableError(`index ${digest} nests too deep`);
        const fetched = await fetcher.fetchManifest(repository, child);
        if (!fetched) throw new ContentUnavailableError(`manifest ${repository}@${child}`);
        await this.putManifest(
          { repository, digest: child, stamp, ...fetched },
          fetcher,
          depth + 1,
        );
        const { metadata } = this.ctx;
        const stillMissing = (await metadata.missingManifests(repository, [child])).length > 0;
        if (stillMissing && (await metadata.manifestExpired(repository, child))) {
          // Retention here expired the child before this index arrived: the index keeps
          // it, with a put newer than the expiry that replicates like any.
          await this.putManifest(
            { repository, digest: child, stamp: this.ctx.clock.next(), ...fetched },
            fetcher,
            depth + 1,
          );
        }
      }
      await this.ctx.metadata.putManifest(
        manifestRecord(repository, digest, bytes, parsed, stamp, change.request),
      );
    });
  }

  /**
   * A retention delete made elsewhere, where no index listed the manifest yet. Here a
   * stored index may list it: then the index keeps its child, with a put newer than the
   * expiry, which replicates back to the region that expired it.
   */
  private async expireManifest(repository: string, digest: Digest, stamp: string) {
    const { metadata, locks } = this.ctx;
    const stored = await metadata.getManifest(repository, digest);
    const parsed = stored ? parseManifest(stored.bytes, stored.mediaType) : undefined;
    // Its blobs are held too: between the delete and the put nothing may take them.
    const keys = [manifestKey(repository, digest), ...(parsed?.blobs ?? []).map(blobKey)];
    await locks.with(keys, async () => {
      await metadata.deleteManifest(repository, digest, stamp, { expired: true });
      if (!stored || !parsed || !(await metadata.listedByIndex(repository, digest))) {
        return;
      }
      await metadata.putManifest(
        manifestRecord(repository, digest, stored.bytes, parsed, this.ctx.clock.next()),
      );
    });
  }

  private async putTag(
    change: Extract<ReplicatedChange, { kind: "tag-put" }>,
    fetcher: ContentFetcher,
  ): Promise<ApplyOutcome> {
    const { repository, tag, digest, stamp } = change;
    const options = { request: change.request };
    const current = await this.ctx.metadata.getTaggedManifest(repository, tag);
    // A newer write of the tag to another manifest is here: this one loses (counted).
    const superseded =
      current?.tagStamp !== undefined && current.tagStamp > stamp && current.digest !== digest;
    if (superseded) return "tag-conflict";
    if (await this.ctx.metadata.setTag(repository, tag, digest, stamp, options)) return "applied";
    const fetched = await fetcher.fetchManifest(repository, digest);
    if (!fetched)
      throw new ContentUnavailableError(`manifest ${repository}@${digest} for tag ${tag}`);
    await this.putManifest({ repository, digest, stamp, ...fetched }, fetcher, 0);
    if (!(await this.ctx.metadata.setTag(repository, tag, digest, stamp, options))) {
      throw new ContentUnavailableError(`manifest ${repository}@${digest} for tag ${tag}`);
    }
    return "applied";
  }
}
