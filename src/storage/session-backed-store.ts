// The upload half of a blob store, given to an object of its own: every driver keeps its
// upload sessions in a class with these seven operations (`fs-`, `s3-`,
// `azure-upload-sessions.ts`), and its store answers BlobStore's upload methods with them.
import type { Readable } from "node:stream";
import type { ByteRange } from "../oci/content-range.ts";
import type { Digest } from "../oci/digest.ts";
import type { BlobInfo, UploadInfo } from "./blob-store.ts";

/** What BlobStore's upload methods mean, as a driver's sessions implement them. */
export interface UploadSessions {
  create(id: string, repository: string): Promise<UploadInfo>;
  get(id: string): Promise<UploadInfo | undefined>;
  append(
    id: string,
    offset: number,
    source: Readable,
    signal?: AbortSignal,
    onWritten?: (bytes: number) => void,
  ): Promise<number>;
  commit(id: string, digest: Digest): Promise<BlobInfo>;
  read(id: string, range: ByteRange): Promise<Readable>;
  delete(id: string): Promise<void>;
  list(): Promise<UploadInfo[]>;
}

/** BlobStore's upload methods, answered by `uploads`. */
export abstract class SessionBackedStore {
  protected abstract readonly uploads: UploadSessions;

  createUpload(id: string, repository: string): Promise<UploadInfo> {
    return this.uploads.create(id, repository);
  }

  getUpload(id: string): Promise<UploadInfo | undefined> {
    return this.uploads.get(id);
  }

  appendUpload(
    id: string,
    offset: number,
    source: Readable,
    signal?: AbortSignal,
    onWritten?: (bytes: number) => void,
  ): Promise<number> {
    return this.uploads.append(id, offset, source, signal, onWritten);
  }

  commitUpload(id: string, digest: Digest): Promise<BlobInfo> {
    return this.uploads.commit(id, digest);
  }

  readUpload(id: string, range: ByteRange): Promise<Readable> {
    return this.uploads.read(id, range);
  }

  deleteUpload(id: string): Promise<void> {
    return this.uploads.delete(id);
  }

  listUploads(): Promise<UploadInfo[]> {
    return this.uploads.list();
  }
}
