// Manifest operations of a repository: put (with reference checks), get by tag or
// digest, delete, tag listing and referrers. A manifest is stored only when every blob
// and child manifest it references is present, so no client can pull a manifest whose
// content is missing.

import type { ChangeRequest, Page, Referrer, StoredManifest } from "../metadata/metadata-store.ts";
import { type Digest, digestAlgorithm, digestOf } from "../oci/digest.ts";
import { maxManifestBytes, parseManifest } from "../oci/manifest.ts";
import { mediaTypes } from "../oci/media-types.ts";
import { OciError } from "../oci/oci-error.ts";
import type { Reference } from "../oci/reference.ts";
import { blobKey, manifestKey } from "./content-locks.ts";
import { manifestRecord } from "./manifest-record.ts";
import type { RegistryContext } from "./registry-context.ts";

export interface PutManifestResult {
  digest: Digest;
  subject?: Digest | undefined;
}

export interface ReferrersIndex {
  schemaVersion: 2;
  mediaType: string;
  manifests: Referrer[];
}

export class ManifestOperations {
  constructor(private readonly ctx: RegistryContext) {}

  async put(
    repository: string,
    reference: Reference,
    bytes: Buffer,
    contentType: string | undefined,
    request?: ChangeRequest,
  ): Promise<PutManifestResult> {
    if (bytes.length > maxManifestBytes) {
      // The API refuses such a body with 413 before it gets here.
      throw new OciError("MANIFEST_INVALID", {
        reason: "manifest too large",
        limit: maxManifestBytes,
      });
    }
    const digest =
      reference.kind === "digest"
        ? digestOf(bytes, digestAlgorithm(reference.digest))
        : digestOf(bytes);
    if (reference.kind === "digest" && digest !== reference.digest) {
      throw new OciError("DIGEST_INVALID", { expected: reference.digest, actual: digest });
    }
    const parsed = parseManifest(bytes, contentType);
    // From the checks to the commit, what the manifest references is held: the collector
    // cannot expire a blob or child it found present.
    const keys = [
      manifestKey(repository, digest),
      ...parsed.blobs.map(blobKey),
      ...parsed.manifests.map((child) => manifestKey(repository, child)),
    ];
    await this.ctx.locks.with(keys, async () => {
      await this.requireBlobs(repository, parsed.blobs);
      await this.requireManifests(repository, parsed.manifests);
      await this.ctx.metadata.putManifest(
        manifestRecord(repository, digest, bytes, parsed, this.ctx.clock.next(), request),
        reference.kind === "tag" ? reference.tag : undefined,
      );
    });
    return { digest, subject: parsed.subject?.digest };
  }

  /** The manifest a reference names; throws MANIFEST_UNKNOWN. */
  async get(repository: string, reference: Reference): Promise<StoredManifest> {
    const found = await this.lookup(repository, reference);
    if (found) return found;
    const name = reference.kind === "tag" ? reference.tag : reference.digest;
    if (await this.ctx.contentSource?.fetchManifest(repository, name)) {
      const fetched = await this.lookup(repository, reference);
      if (fetched) return fetched;
    }
    throw new OciError("MANIFEST_UNKNOWN", { reference: name });
  }

  /** Deletes a manifest by digest (and its tags) or a single tag. */
  async delete(repository: string, reference: Reference, request?: ChangeRequest): Promise<void> {
    if (!(await this.lookup(repository, reference))) {
      const name = reference.kind === "tag" ? reference.tag : reference.digest;
      throw new OciError("MANIFEST_UNKNOWN", { reference: name });
    }
    const stamp = this.ctx.clock.next();
    if (reference.kind === "digest") {
      await this.ctx.metadata.deleteManifest(repository, reference.digest, stamp, { request });
    } else {
      await this.ctx.metadata.deleteTag(repository, reference.tag, stamp, { request });
    }
  }

  /** Tags in lexical order; throws NAME_UNKNOWN for a repository that does not exist. */
  async tags(repository: string, page: Page): Promise<string[]> {
    const tags = await this.ctx.metadata.listTags(repository, page);
    if (!tags) throw new OciError("NAME_UNKNOWN", { name: repository });
    return tags;
  }

  /** Every tag, as `tags` orders them, as the text of a JSON array; throws NAME_UNKNOWN too. */
  async tagsJson(repository: string): Promise<string> {
    const json = await this.ctx.metadata.listTagsJson(repository);
    if (json === undefined) throw new OciError("NAME_UNKNOWN", { name: repository });
    return json;
  }

  async referrers(
    repository: string,
    digest: Digest,
    artifactType?: string,
  ): Promise<ReferrersIndex> {
    const manifests = await this.ctx.metadata.listReferrers(repository, digest, artifactType);
    return { schemaVersion: 2, mediaType: mediaTypes.ociIndex, manifests };
  }

  private lookup(repository: string, reference: Reference): Promise<StoredManifest | undefined> {
    return reference.kind === "tag"
      ? this.ctx.metadata.getTaggedManifest(repository, reference.tag)
      : this.ctx.metadata.getManifest(repository, reference.digest);
  }

  /** Every blob must be linked in the repository; missing ones are asked for first. */
  private async requireBlobs(repository: string, digests: Digest[]): Promise<void> {
    let missing = await this.ctx.metadata.missingBlobs(repository, unique(digests));
    if (missing.length > 0 && this.ctx.contentSource) {
      const source = this.ctx.contentSource;
      await Promise.all(missing.map((digest) => source.fetchBlob(repository, digest)));
      missing = await this.ctx.metadata.missingBlobs(repository, missing);
    }
    if (missing.length > 0)
      throw new OciError("MANIFEST_BLOB_UNKNOWN", { digest: missing[0], missing });
  }

  private async requireManifests(repository: string, digests: Digest[]): Promise<void> {
    let missing = await this.ctx.metadata.missingManifests(repository, unique(digests));
    if (missing.length > 0 && this.ctx.contentSource) {
      const source = this.ctx.contentSource;
      await Promise.all(missing.map((digest) => source.fetchManifest(repository, digest)));
      missing = await this.ctx.metadata.missingManifests(repository, missing);
    }
    if (missing.length > 0) {
      throw new OciError("MANIFEST_BLOB_UNKNOWN", {
        digest: missing[0],
        missing,
        reason: "child manifest unknown",
      });
    }
  }
}

function unique<T>(items: T[]): T[] {
  return [...new Set(items)];
}
