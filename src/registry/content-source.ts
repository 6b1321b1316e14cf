// The missing-content seam: when the registry lacks a blob or manifest it asks an
// injected source (in a geo-replicated deployment, the peers) before it answers 404 or
// rejects a manifest. With no source the registry answers as a single registry does.
import type { Digest } from "../oci/digest.ts";

export interface ContentSource {
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
