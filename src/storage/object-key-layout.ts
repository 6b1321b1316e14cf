// Where the object-store drivers (S3, Azure Blob) keep everything under one bucket or
// container, behind an optional prefix:
//
//   <prefix>blobs/<algorithm>/<hex>         published blobs, immutable, verified
//   <prefix>uploads/<id>/info.json          an upload's repository and start time
//   <prefix>uploads/<id>/chunks/<offset>    S3: received bytes, one object per chunk
//   <prefix>uploads/<id>/data               Azure: received bytes, one block blob
//
// Blob keys sort as their digests do ("sha256/" < "sha512/" like "sha256:" < "sha512:"),
// so a listing by key order pages through digests in lexical order.
import { type Digest, isDigest } from "../oci/digest.ts";
import { uploadIdPattern } from "./blob-store.ts";

/** Offsets in chunk keys are zero-padded so that key order is offset order. */
const offsetDigits = 16;

export class ObjectKeyLayout {
  readonly prefix: string;

  constructor(prefix = "") {
    this.prefix = prefix === "" || prefix.endsWith("/") ? prefix : `${prefix}/`;
  }

  get blobsPrefix(): string {
    return `${this.prefix}blobs/`;
  }

  get uploadsPrefix(): string {
    return `${this.prefix}uploads/`;
  }

  blobKey(digest: Digest): string {
    const colon = digest.indexOf(":");
    return `${this.blobsPrefix}${digest.slice(0, colon)}/${digest.slice(colon + 1)}`;
  }

  /** The digest a blob key names, or undefined for a key that is not a blob's. */
  digestOfKey(key: string): Digest | undefined {
    if (!key.startsWith(this.blobsPrefix)) return undefined;
    const rest = key.slice(this.blobsPrefix.length);
    const slash = rest.indexOf("/");
    if (slash < 0) return undefined;
    const digest = `${rest.slice(0, slash)}:${rest.slice(slash + 1)}`;
    return isDigest(digest) ? (digest as Digest) : undefined;
  }

  uploadPrefix(id: string): string {
    return `${this.uploadsPrefix}${id}/`;
  }

  uploadInfoKey(id: string): string {
    return `${this.uploadPrefix(id)}info.json`;
  }

  uploadDataKey(id: string): string {
    return `${this.uploadPrefix(id)}data`;
  }

  uploadChunksPrefix(id: string): string {
    return `${this.uploadPrefix(id)}chunks/`;
  }

  uploadChunkKey(id: string, offset: number): string {
    return `${this.uploadChunksPrefix(id)}${String(offset).padStart(offsetDigits, "0")}`;
  }

  /** The offset a chunk key of upload `id` starts at, or undefined. */
  chunkOffsetOfKey(id: string, key: string): number | undefined {
    const prefix = this.uploadChunksPrefix(id);
    if (!key.startsWith(prefix)) return undefined;
    const digits = key.slice(prefix.length);
    return /^\d+$/.test(digits) ? Number(digits) : undefined;
  }

  /** The upload id of an `uploads/<id>/` listing prefix, or undefined. */
  uploadIdOfPrefix(prefix: string): string | undefined {
    if (!prefix.startsWith(this.uploadsPrefix)) return undefined;
    const id = prefix.slice(this.uploadsPrefix.length).replace(/\/$/, "");
    return uploadIdPattern.test(id) ? id : undefined;
  }
}

/** What info.json holds. */
export interface UploadRecord {
  repository: string;
  startedAt: string;
}

export function encodeUploadRecord(repository: string, startedAt: Date): Buffer {
  return Buffer.from(JSON.stringify({ repository, startedAt: startedAt.toISOString() }));
}

export function decodeUploadRecord(bytes: Buffer): UploadRecord {
  const value = JSON.parse(bytes.toString("utf8")) as Partial<UploadRecord>;
  if (typeof value.repository !== "string" || typeof value.startedAt !== "string") {
    throw new Error("upload record without repository or startedAt");
  }
  return { repository: value.repository, startedAt: value.startedAt };
}
