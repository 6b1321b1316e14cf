// Rows as every SQL driver reads them, turned into the store's records: one mapping for
// SQLite and PostgreSQL, whose tables have the same columns.
import type { Digest } from "../oci/digest.ts";
import {
  type ChangeKind,
  type ChangeRecord,
  type ChangeRequest,
  controlRepository,
  type StoredManifest,
} from "./metadata-store.ts";

export interface ManifestRow {
  digest: string;
  media_type: string;
  bytes: Buffer;
  stamp: string;
  tag_stamp?: string;
  subject: string | null;
}

export interface ChangeRow {
  /** A number (SQLite) or the text of a bigint (PostgreSQL). */
  seq: number | string;
  stamp: string;
  kind: ChangeKind;
  repository: string;
  digest?: string | null | undefined;
  tag?: string | null | undefined;
  /** The client request, as JSON text. */
  request?: string | null | undefined;
}

/** The pseudo-repository prefix under which the change log names control records. */
export const controlPrefix = `${controlRepository}:`;

/** A change-log row as a record; a control record's row names it by repository and tag. */
export function changeRecord(row: ChangeRow): ChangeRecord {
  const record: ChangeRecord = {
    seq: Number(row.seq),
    stamp: row.stamp,
    kind: row.kind,
    repository: row.repository,
    digest: (row.digest ?? undefined) as Digest | undefined,
    tag: row.tag ?? undefined,
  };
  if (row.repository.startsWith(controlPrefix) && row.tag) {
    record.control = { kind: row.repository.slice(controlPrefix.length), name: row.tag };
  }
  if (row.request) record.request = JSON.parse(row.request) as ChangeRequest;
  return record;
}

export function toStoredManifest(row: ManifestRow | undefined): StoredManifest | undefined {
  if (!row) return undefined;
  const manifest: StoredManifest = {
    digest: row.digest as Digest,
    mediaType: row.media_type,
    bytes: row.bytes,
    subject: (row.subject ?? undefined) as Digest | undefined,
    stamp: row.stamp,
  };
  if (row.tag_stamp !== undefined) manifest.tagStamp = row.tag_stamp;
  return manifest;
}
