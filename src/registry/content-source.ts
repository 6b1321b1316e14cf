// The missing-content seam: when the registry lacks a blob or manifest it asks an
// injected source (in a geo-replicated deployment, the peers) before it answers 404 or
// rejects a manifest. With no source the registry answers as a single registry does.
import type { Writable } from "node:stream";
import type { Digest } from "../oci/digest.ts";

/** A blob on its way from a source, readable while it arrives. */
export interface IncomingBlob {
  /** The size the source announced. */
  size: number;
  /**
   * Writes the blob's bytes into `sink` as they arrive, without ending it. The last byte
   * is written only once the whole blob verified against its digest and is stored and
   * linked, so a sink never receives a complete body that failed; rejects when the bytes
   * fail verification or the transfer fails (nothing is stored or linked then), or when
   * the sink fails or closes early. `begin` is called once, right before the first byte
   * is written (or before an empty blob ends), so that the answer's head goes out only
   * then: a transfer that fails before any byte still gets an error answer.
   */
  sendTo(sink: Writable, begin: () => void): Promise<void>;
}

export interface ContentSource {
  /**
   * The size of a blob the local replica lacks, when a source links it into
   * `repository`; undefined when none does. Stores nothing.
   */
  statBlob(repository: string, digest: Digest): Promise<{ size: number } | undefined>;
  /**
   * Starts bringing a blob the local replica lacks (stored verified, then linked into
   * `repository`) and returns it as it arrives; undefined when no source has it.
   */
  openBlob(repository: string, digest: Digest): Promise<IncomingBlob | undefined>;
  /**
   * Obtains a blob the local replica lacks, stores it verified and links it into
   * `repository`. Resolves true when the blob is now present, false when no source has it.
   */
  fetchBlob(repository: string, digest: Digest): Promise<boolean>;
  /**
   * Obtains a manifest (by tag or digest) the local replica lacks and stores it with its
   * content. Resolves true when it is now present.
   */
  fetchManifest(repository: string, reference: string): Promise<boolean>;
}
