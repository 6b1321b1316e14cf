// The S3 blob-store driver (AWS S3 or any S3-compatible store). Published blobs are
// immutable objects at blobs/<algorithm>/<hex> (object-key-layout.ts); an ingest streams
// into a multipart upload at that key while hashing and completes it only once the digest
// verified (staged-object.ts), so an object at a blob key is always a verified blob. Upload
// sessions live in the bucket too (s3-upload-sessions.ts), shared by every node.

import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import type { Readable, Writable } from "node:stream";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import type { ByteRange } from "../oci/content-range.ts";
import type { Digest } from "../oci/digest.ts";
import {
  type BlobInfo,
  BlobNotFoundError,
  type BlobStore,
  type IngestOptions,
  type StoredBlob,
} from "./blob-store.ts";
import { ObjectKeyLayout } from "./object-key-layout.ts";
import { listObjects } from "./s3-listing.ts";
import { presignedGetUrl, type S3Addressing } from "./s3-signed-url.ts";
import { isS3NotFound, S3StagedObject } from "./s3-staged-object.ts";
import { S3UploadSessions } from "./s3-upload-sessions.ts";
import { sendStream } from "./send-stream.ts";
import { SessionBackedStore } from "./session-backed-store.ts";
import { ingestVerified } from "./staged-object.ts";

export interface S3BlobStoreOptions {
  bucket: string;
  /** Default us-east-1 (S3-compatible stores mostly ignore it). */
  region?: string | undefined;
  /** An S3-compatible endpoint, e.g. http://127.0.0.1:9000; default AWS. */
  endpoint?: string | undefined;
  /** Path-style URLs (bucket in the path), which most S3-compatible stores need. */
  forcePathStyle?: boolean | undefined;
  /** Keys start with this (a folder of a shared bucket). */
  prefix?: string | undefined;
  /**
   * Explicit credentials; otherwise the SDK's default chain (env AWS_ACCESS_KEY_ID and
   * AWS_SECRET_ACCESS_KEY, the shared config files, the instance role).
   */
  credentials?: { accessKeyId: string; secretAccessKey: string } | undefined;
  /** Blob reads redirect to presigned URLs valid this long; undefined: no redirects. */
  redirectTtlSeconds?: number | undefined;
}

const maxStoreConnections = 1024;

export class S3BlobStore extends SessionBackedStore implements BlobStore {
  private readonly layout: ObjectKeyLayout;
  protected readonly uploads: S3UploadSessions;

  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    prefix = "",
    private readonly redirect?: { addressing: S3Addressing; ttlSeconds: number },
  ) {
    super();
    this.layout = new ObjectKeyLayout(prefix);
    this.uploads = new S3UploadSessions({
      client,
      bucket,
      layout: this.layout,
      stage: (digest) => new S3StagedObject(client, bucket, this.layout.blobKey(digest)),
    });
  }

  static open(options: S3BlobStoreOptions): S3BlobStore {
    // On any Node below 22 the SDK warns that its versions published after January 2027
    // will need it, in a multi-line message on stderr that breaks the replica's JSON log.
    // The version package-lock.json pins runs on Node 20, which Meridian targets; moving
    // past it is a change of the lock file like any other.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
    const client = new S3Client({
      region: options.region ?? "us-east-1",
      endpoint: options.endpoint,
      forcePathStyle: options.forcePathStyle ?? false,
      credentials: options.credentials,
      // Checksums only where S3 requires them: S3-compatible stores differ in what
      // they accept, and every blob is verified by its digest anyway.
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      // Each pull in progress holds a connection while its client reads (the SDK's
      // default is 50): slow clients must not starve every other request of the store.
      requestHandler: {
        httpAgent: new HttpAgent({ keepAlive: true, maxSockets: maxStoreConnections }),
        httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: maxStoreConnections }),
      },
    });
    const addressing = {
      bucket: options.bucket,
      region: options.region ?? "us-east-1",
      endpoint: options.endpoint,
      forcePathStyle: options.forcePathStyle ?? false,
    };
    const redirect = options.redirectTtlSeconds
      ? { addressing, ttlSeconds: options.redirectTtlSeconds }
      : undefined;
    return new S3BlobStore(client, options.bucket, options.prefix, redirect);
  }

  /** Throws unless the bucket answers with these credentials. */
  async probe(): Promise<void> {
    await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
  }

  async stat(digest: Digest): Promise<BlobInfo | undefined> {
    const found = await this.head(digest);
    return found && { size: found.size };
  }

  async read(digest: Digest, range?: ByteRange): Promise<Readable> {
    try {
      const got = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: this.layout.blobKey(digest),
          Range: range && `bytes=${range.start}-${range.end}`,
        }),
      );
      return got.Body as Readable;
    } catch (error) {
      if (isS3NotFound(error)) throw new BlobNotFoundError(digest);
      throw error;
    }
  }

  async sendTo(digest: Digest, range: ByteRange, sink: Writable): Promise<void> {
    await sendStream(await this.read(digest, range), sink);
  }

  ingest(digest: Digest, source: Readable, options: IngestOptions = {}): Promise<BlobInfo> {
    const target = new S3StagedObject(this.client, this.bucket, this.layout.blobKey(digest));
    return ingestVerified(source, target, { digest, ...options });
  }

  async delete(digest: Digest): Promise<boolean> {
    // S3 deletes answer the same whether the key existed: ask first.
    if (!(await this.head(digest))) return false;
    await this.client.send(
      new DeleteObjectCommand({ Bucket: this.bucket, Key: this.layout.blobKey(digest) }),
    );
    return true;
  }

  async listBlobs(after: Digest | undefined, limit: number): Promise<StoredBlob[]> {
    // Blob keys sort as digests do: a page resumes right after the last digest given.
    const found: StoredBlob[] = [];
    const startAfter = after && this.layout.blobKey(after);
    for await (const object of listObjects(
      this.client,
      this.bucket,
      this.layout.blobsPrefix,
      startAfter,
    )) {
      const digest = this.layout.digestOfKey(object.key);
      if (!digest || (after !== undefined && digest <= after)) continue;
      found.push({ digest, size: object.size, modifiedAt: object.modifiedAt });
      if (found.length >= limit) break;
    }
    return found;
  }

  async published(digest: Digest): Promise<StoredBlob | undefined> {
    const found = await this.head(digest);
    return found && { digest, ...found };
  }

  async signedReadUrl(digest: Digest): Promise<string | undefined> {
    if (!this.redirect) return undefined;
    const { addressing, ttlSeconds } = this.redirect;
    return presignedGetUrl(this.client, addressing, this.layout.blobKey(digest), ttlSeconds);
  }

  private async head(digest: Digest): Promise<{ size: number; modifiedAt: Date } | undefined> {
    try {
      const head = await this.client.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: this.layout.blobKey(digest) }),
      );
      return { size: head.ContentLength ?? 0, modifiedAt: head.LastModified ?? new Date(0) };
    } catch (error) {
      if (isS3NotFound(error)) return undefined;
      throw error;
    }
  }
}
