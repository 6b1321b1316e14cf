// Copies one image from a source registry into this replica as a local push: blobs
// stream into the registry's blob intake (a session per digest, so an interrupted blob
// resumes with Range; verified against the digest, published, then linked with this
// replica's stamp, as a push links it), manifests go through its manifest put (the same
// reference checks as a client's push), children before their index and the tag last, so
// the import replicates and raises events like any push. What is already here is skipped
// (a linked blob, a blob stored for another repository is only linked, a stored
// manifest), so a second run of the same import transfers nothing and writes nothing.
import { pipeline, Transform } from "node:stream";
import type { ChangeRequest } from "../metadata/metadata-store.ts";
import type { Digest } from "../oci/digest.ts";
import type { Descriptor } from "../oci/manifest.ts";
import { OciError } from "../oci/oci-error.ts";
import { DigestMismatchError } from "../registry/blob-intake.ts";
import type { Registry } from "../registry/registry.ts";
import { failureReason, ImportFailure } from "./import-failure.ts";
import { type ManifestLinks, manifestLinks, platformMatches } from "./manifest-links.ts";
import type { FetchedManifest, SourceClient } from "./source-client.ts";
import {
  type Platform,
  platformText,
  type SourceReference,
  type TargetReference,
} from "./source-reference.ts";

export interface ImportSpec {
  source: SourceReference;
  target: TargetReference;
  /** Only this platform's manifest of an index (the tag then names it). */
  platform?: Platform | undefined;
  withReferrers: boolean;
  force: boolean;
  /** The request that asked for the import, which the image's pushes name. */
  request?: ChangeRequest | undefined;
}

export interface ImportProgress {
  manifestsDone: number;
  manifestsTotal: number;
  blobsDone: number;
  blobsTotal: number;
  bytesDone: number;
  bytesTotal: number;
  /** Blobs already here (linked, or stored and only linked): nothing moved for them. */
  blobsSkipped: number;
  /** Bytes read from the source (a blob retried counts once). */
  bytesTransferred: number;
  /** How often the source made us wait (429/503 with Retry-After). */
  throttled: number;
  /** Blobs streaming now. */
  active: { digest: string; size: number; bytesDone: number }[];
}

export interface ImporterOptions {
  registry: Registry;
  client: SourceClient;
  spec: ImportSpec;
  signal: AbortSignal;
  /** Called whenever progress moves (often: the caller throttles). */
  onProgress: (progress: ImportProgress) => void;
  blobConcurrency?: number;
}

interface Node {
  manifest: FetchedManifest;
  links: ManifestLinks;
}

/** Manifests one import may bring (an index, its children, referrers of each). */
const maxManifests = 1000;
const blobAttempts = 3;

export function emptyProgress(): ImportProgress {
  return {
    manifestsDone: 0,
    manifestsTotal: 0,
    blobsDone: 0,
    blobsTotal: 0,
    bytesDone: 0,
    bytesTotal: 0,
    blobsSkipped: 0,
    bytesTransferred: 0,
    throttled: 0,
    active: [],
  };
}

export class ImageImporter {
  readonly progress = emptyProgress();
  private readonly nodes: Node[] = [];
  private readonly seen = new Set<string>();

  constructor(private readonly options: ImporterOptions) {}

  /** Runs the copy; the digest the tag (or the import) names. Throws ImportFailure. */
  async run(): Promise<{ digest: Digest; mediaType: string }> {
    const { client, spec } = this.options;
    await client.connect();
    const reference =
      spec.source.reference.kind === "tag"
        ? spec.source.reference.tag
        : spec.source.reference.digest;
    const root = await this.selectPlatform(await this.top(reference));
    await this.walk(root, 0);
    if (spec.withReferrers) await this.addReferrers();
    await this.refuseTagConflict(root.digest);

    const blobs = new Map<string, Descriptor>();
    for (const node of this.nodes)
      for (const blob of node.links.blobs) blobs.set(blob.digest, blob);
    Object.assign(this.progress, {
      manifestsTotal: this.nodes.length,
      blobsTotal: blobs.size,
      bytesTotal: [...blobs.values()].reduce((sum, b) => sum + b.size, 0),
    });
    this.report();
    await this.copyBlobs([...blobs.values()]);
    for (const node of this.nodes) await this.storeManifest(node);
    await this.tag(root);
    return { digest: root.digest, mediaType: root.mediaType };
  }

  /**
   * The manifest the source reference names. A tag is resolved with HEAD first: when its
   * digest is stored here already, its bytes are read here (registries such as Docker Hub
   * count manifest GETs against a pull limit, not HEADs).
   */
  private async top(reference: string): Promise<FetchedManifest> {
    if (reference.includes(":")) return this.manifest(reference as Digest);
    const digest = await this.options.client.resolve(reference);
    const stored = digest ? await this.stored(digest) : undefined;
    return stored ?? this.options.client.manifest(reference);
  }

  /** A manifest by digest: this repository's copy when it holds one, else the source's. */
  private async manifest(digest: Digest): Promise<FetchedManifest> {
    return (await this.stored(digest)) ?? this.options.client.manifest(digest);
  }

  private async stored(digest: Digest): Promise<FetchedManifest | undefined> {
    const found = await this.options.registry.state.manifest(this.options.spec.target.repository, {
      digest,
    });
    return found ? { digest, mediaType: found.mediaType, bytes: found.bytes } : undefined;
  }

  /** With --platform, an index gives way to its child for that platform. */
  private async selectPlatform(top: FetchedManifest): Promise<FetchedManifest> {
    const wanted = this.options.spec.platform;
    if (!wanted) return top;
    const links = manifestLinks(top.bytes, top.mediaType, top.digest);
    if (!links.index) return top;
    const child = links.children.find((c) => platformMatches(c, wanted));
    if (!child) {
      const offered = links.children.flatMap((c) => (c.platform ? [platformText(c.platform)] : []));
      throw new ImportFailure(
        `the source index has no ${platformText(wanted)} manifest (it has: ${offered.join(", ") || "no platforms"})`,
      );
    }
    return this.manifest(child.digest);
  }

  /** Adds a manifest after everything it needs (children first), once each. */
  private async walk(manifest: FetchedManifest, depth: number): Promise<void> {
    if (this.seen.has(manifest.digest)) return;
    this.seen.add(manifest.digest);
    if (this.seen.size > maxManifests)
      throw new ImportFailure(`more than ${maxManifests} manifests to import`);
    const links = manifestLinks(manifest.bytes, manifest.mediaType, manifest.digest);
    if (links.index) {
      if (depth > 4) throw new ImportFailure("indexes nested more than 4 deep");
      const fresh = links.children.filter((c) => !this.seen.has(c.digest));
      const children = await Promise.all(fresh.map((c) => this.manifest(c.digest)));
      for (const child of children) await this.walk(child, depth + 1);
    }
    this.nodes.push({ manifest, links });
  }

  /** Referrers of every manifest (and theirs: a signature of an SBOM), after their subject. */
  private async addReferrers(): Promise<void> {
    for (let i = 0; i < this.nodes.length; i += 1) {
      const subject = this.nodes[i]?.manifest.digest as Digest;
      for (const referrer of await this.options.client.referrers(subject)) {
        if (this.seen.has(referrer.digest)) continue;
        await this.walk(await this.manifest(referrer.digest), 0);
      }
    }
  }

  /** An existing tag naming another manifest is kept unless --force. */
  private async refuseTagConflict(digest: Digest): Promise<void> {
    const { target, force } = this.options.spec;
    if (!target.tag || force) return;
    const existing = await this.options.registry.state.manifest(target.repository, {
      tag: target.tag,
    });
    if (existing && existing.digest !== digest) {
      throw new ImportFailure(
        `${target.repository}:${target.tag} already exists and names ${existing.digest}, not ${digest}: use --force to overwrite it`,
      );
    }
  }

  private async copyBlobs(blobs: Descriptor[]): Promise<void> {
    const queue = [...blobs];
    const worker = async () => {
      for (let blob = queue.shift(); blob; blob = queue.shift()) await this.copyBlob(blob);
    };
    const width = Math.max(1, Math.min(this.options.blobConcurrency ?? 4, queue.length));
    await Promise.all(Array.from({ length: width }, worker));
  }

  private async copyBlob(blob: Descriptor): Promise<void> {
    const { registry, spec } = this.options;
    const repository = spec.target.repository;
    const done = (skipped: boolean) => {
      this.progress.blobsDone += 1;
      if (skipped) {
        this.progress.blobsSkipped += 1;
        this.progress.bytesDone += blob.size;
      }
      this.report();
    };
    if (await registry.state.blobLink(repository, blob.digest)) return done(true);
    for (let attempt = 1; ; attempt += 1) {
      // Stored meanwhile (for another repository, or by replication): only the link is missing.
      const stored = await registry.intake.stored(blob.digest);
      if (stored) {
        await registry.blobs.link(repository, blob.digest, stored.size);
        return done(true);
      }
      const entry = { digest: blob.digest, size: blob.size, bytesDone: 0 };
      this.progress.active.push(entry);
      try {
        await this.transfer(blob, entry);
        await registry.blobs.link(repository, blob.digest, blob.size);
        return done(false);
      } catch (error) {
        this.progress.bytesDone -= entry.bytesDone;
        if (!retryable(error) || attempt >= blobAttempts || this.options.signal.aborted) {
          throw describeBlobError(error, blob);
        }
      } finally {
        this.progress.active.splice(this.progress.active.indexOf(entry), 1);
      }
    }
  }

  /**
   * Streams the blob into the intake's session for its digest, from where an earlier
   * attempt (or run) stopped when the source honours Range, then verifies and publishes it.
   */
  private async transfer(blob: Descriptor, entry: { bytesDone: number }): Promise<void> {
    const { registry, client, signal } = this.options;
    const digest = blob.digest as Digest;
    const intake = registry.intake;
    let offset = await intake.resume(digest);
    if (offset > blob.size) {
      await intake.restart(digest);
      offset = 0;
    }
    let opened = offset < blob.size ? await client.blob(digest, offset) : undefined;
    if (opened && offset > 0 && (!opened.partial || opened.unsatisfiable)) {
      // The source ignored or refused the range: start again from byte 0.
      opened.body.destroy();
      await intake.restart(digest);
      offset = 0;
      opened = await client.blob(digest);
    }
    entry.bytesDone = offset;
    this.progress.bytesDone += offset;
    if (opened) {
      const expected = blob.size - offset;
      if (opened.size !== undefined && opened.size !== expected) {
        opened.body.destroy();
        throw new ImportFailure(
          `the source sent ${opened.size} bytes for blob ${digest} from byte ${offset}, whose descriptor says ${blob.size} in all`,
        );
      }
      const progress = this.progress;
      const report = () => this.report();
      let received = 0;
      const counter = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          received += chunk.length;
          // A source that sends more than the descriptor says is not let fill the disk.
          if (received > expected)
            return callback(
              new ImportFailure(`the source sent more than ${blob.size} bytes for blob ${digest}`),
            );
          entry.bytesDone += chunk.length;
          progress.bytesDone += chunk.length;
          progress.bytesTransferred += chunk.length;
          report();
          callback(null, chunk);
        },
      });
      const counted = pipeline(opened.body, counter, () => undefined);
      const size = await intake.append(digest, offset, counted, { signal });
      if (size !== blob.size)
        throw new Error(`the source ended blob ${digest} at byte ${size} of ${blob.size}`);
    }
    await intake.publish(digest);
  }

  private async storeManifest(node: Node): Promise<void> {
    const { registry, spec } = this.options;
    const { digest, bytes, mediaType } = node.manifest;
    if (!(await registry.state.manifest(spec.target.repository, { digest }))) {
      await registry.manifests.put(
        spec.target.repository,
        { kind: "digest", digest },
        bytes,
        mediaType,
        spec.request,
      );
    }
    this.progress.manifestsDone += 1;
    this.report();
  }

  private async tag(root: FetchedManifest): Promise<void> {
    const { registry, spec } = this.options;
    const tag = spec.target.tag;
    if (!tag) return;
    const current = await registry.state.manifest(spec.target.repository, { tag });
    if (current?.digest === root.digest) return;
    await this.refuseTagConflict(root.digest);
    await registry.manifests.put(
      spec.target.repository,
      { kind: "tag", tag },
      root.bytes,
      root.mediaType,
      spec.request,
    );
  }

  private report(): void {
    this.progress.throttled = this.options.client.throttled;
    this.options.onProgress(this.progress);
  }
}

/**
 * A broken or short stream, or a session another writer took over (replication bringing
 * the same blob), is worth another try from where the session stands; a wrong digest or a
 * refusal is not.
 */
function retryable(error: unknown): boolean {
  return !(
    error instanceof ImportFailure ||
    error instanceof OciError ||
    error instanceof DigestMismatchError
  );
}

function describeBlobError(error: unknown, blob: Descriptor): unknown {
  if (error instanceof DigestMismatchError) {
    return new ImportFailure(`the source's blob ${blob.digest} does not match its digest`, {
      cause: error,
    });
  }
  if (error instanceof ImportFailure || error instanceof OciError) return error;
  return new ImportFailure(`blob ${blob.digest}: ${failureReason(error)}`, { cause: error });
}
