// The metadata record of a parsed manifest: what both a client's push and a replicated
// change store.
import type { ChangeRequest, ManifestRecord, Stamp } from "../metadata/metadata-store.ts";
import type { Digest } from "../oci/digest.ts";
import type { ParsedManifest } from "../oci/manifest.ts";

export function manifestRecord(
  repository: string,
  digest: Digest,
  bytes: Buffer,
  parsed: ParsedManifest,
  stamp: Stamp,
  request?: ChangeRequest,
): ManifestRecord {
  const record: ManifestRecord = {
    repository,
    digest,
    mediaType: parsed.mediaType,
    bytes,
    blobs: parsed.blobs,
    manifests: parsed.manifests,
    subject: parsed.subject?.digest,
    artifactType: parsed.artifactType,
    annotations: parsed.annotations,
    stamp,
  };
  if (request) record.request = request;
  return record;
}
