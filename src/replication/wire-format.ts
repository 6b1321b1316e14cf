// The change-feed record on the wire, and the checks a follower runs on what a peer sends
// (input is checked where it enters: a peer is trusted with credentials, not with shapes).
//
//   {"seq":12,"stamp":"1732550000000.000000.westus","kind":"tag-put",
//    "repository":"library/app","digest":"sha256:...","tag":"v1"}
//   manifest-put records also carry "mediaType" and "bytes" (base64); a manifest deleted
//   since carries neither and is skipped (its delete follows in the feed). A blob-link
//   record of a small blob carries the blob as "blob" (base64), checked against its digest
//   by the follower before it is stored. A push's or delete's records carry the client
//   request that made them as "request" ({id, host, method, useragent}), for webhooks.
import {
  type ChangeKind,
  type ChangeRecord,
  type ChangeRequest,
  controlRepository,
} from "../metadata/metadata-store.ts";
import { type Digest, parseDigest } from "../oci/digest.ts";
import { isTag, parseRepositoryName } from "../oci/reference.ts";
import { parseStamp } from "../registry/hybrid-clock.ts";
import type { ReplicatedChange } from "../registry/replicated-change.ts";

export interface WireRecord {
  seq: number;
  stamp: string;
  kind: ChangeKind;
  repository: string;
  digest?: string | undefined;
  tag?: string | undefined;
  mediaType?: string | undefined;
  bytes?: string | undefined;
  /** A small blob's bytes (base64), on its blob-link record. */
  blob?: string | undefined;
  /** A control record's value (JSON text), on its control-put record. */
  value?: string | undefined;
  /** The client request that made the change, where one did. */
  request?: ChangeRequest | undefined;
}

/**
 * The feed's protocol version: a page says which it is written in, and a follower refuses
 * a newer one than it knows, with a message that says to upgrade, rather than misread
 * records of kinds it has never seen. (1: the record kinds and fields above; pages
 * without the field are from replicas older than the field, which write version 1.)
 */
export const feedProtocol = 1;

/** The content type of a stream of feed pages, one JSON page per line. */
export const feedStreamType = "application/x-ndjson";

export interface FeedPage {
  records: WireRecord[];
  /** The protocol the page is written in (absent: 1). */
  protocol?: number | undefined;
  /** The peer's newest seq when it answered. */
  head: number;
  /** The identity of the peer's change log (a new one when its data was replaced). */
  log?: string | undefined;
}

export function toWire(
  record: ChangeRecord,
  manifest?: { mediaType: string; bytes: Buffer },
  blob?: Buffer,
  value?: string,
): WireRecord {
  const wire: WireRecord = {
    seq: record.seq,
    stamp: record.stamp,
    kind: record.kind,
    repository: record.repository,
  };
  if (record.digest !== undefined) wire.digest = record.digest;
  if (record.tag !== undefined) wire.tag = record.tag;
  if (manifest) {
    wire.mediaType = manifest.mediaType;
    wire.bytes = manifest.bytes.toString("base64");
  }
  if (blob) wire.blob = blob.toString("base64");
  if (value !== undefined) wire.value = value;
  if (record.request) wire.request = record.request;
  return wire;
}

export class PeerProtocolError extends Error {
  constructor(message: string) {
    super(`peer sent an invalid reply: ${message}`);
    this.name = "PeerProtocolError";
  }
}

/** Validates a feed page from a peer. */
export function parseFeedPage(body: unknown): FeedPage {
  if (!isObject(body) || !Array.isArray(body.records) || !isSeq(body.head)) {
    throw new PeerProtocolError("feed page must be {records: [...], head}");
  }
  if (body.log !== undefined && typeof body.log !== "string")
    throw new PeerProtocolError("log must be a string");
  const protocol = body.protocol ?? 1;
  if (typeof protocol !== "number" || !Number.isSafeInteger(protocol) || protocol < 1)
    throw new PeerProtocolError("protocol must be a positive whole number");
  if (protocol > feedProtocol) {
    throw new PeerProtocolError(
      `the peer writes feed protocol ${protocol} and this replica reads up to ${feedProtocol}: upgrade this replica`,
    );
  }
  return {
    records: body.records.map(parseWireRecord),
    head: body.head,
    log: body.log,
    protocol,
  };
}

function parseWireRecord(value: unknown): WireRecord {
  if (!isObject(value) || !isSeq(value.seq) || typeof value.stamp !== "string") {
    throw new PeerProtocolError("record needs seq and stamp");
  }
  if (!parseStamp(value.stamp))
    throw new PeerProtocolError(`bad stamp ${String(value.stamp).slice(0, 80)}`);
  const optionalString = (field: string): string | undefined => {
    const v = value[field];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "string") throw new PeerProtocolError(`${field} must be a string`);
    return v;
  };
  return {
    seq: value.seq,
    stamp: value.stamp,
    kind: value.kind as ChangeKind,
    repository: String(value.repository),
    digest: optionalString("digest"),
    tag: optionalString("tag"),
    mediaType: optionalString("mediaType"),
    bytes: optionalString("bytes"),
    blob: optionalString("blob"),
    value: optionalString("value"),
    request: parseRequest(value.request),
  };
}

const requestFields = ["id", "host", "method", "useragent"] as const;

/** A record's client request: four strings of bounded length, or absent. */
function parseRequest(value: unknown): ChangeRequest | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) throw new PeerProtocolError("request must be an object");
  for (const field of requestFields) {
    const v = value[field];
    if (typeof v !== "string" || v.length > 256)
      throw new PeerProtocolError(`request.${field} must be a string of at most 256 characters`);
  }
  const { id, host, method, useragent } = value as Record<(typeof requestFields)[number], string>;
  return { id, host, method, useragent };
}

/**
 * Turns a wire record into a change to apply, or undefined when there is nothing to
 * apply (a manifest put whose manifest the peer no longer holds). Throws
 * PeerProtocolError for malformed records.
 */
export function toChange(record: WireRecord): ReplicatedChange | undefined {
  if (record.kind === "control-put" || record.kind === "control-delete") {
    return toControlChange(record);
  }
  const repository = guard(() => parseRepositoryName(record.repository), "repository");
  const { stamp } = record;
  // Only present when sent, so that a change without one equals one made here.
  const request = record.request ? { request: record.request } : {};
  const digest = (): Digest => {
    if (record.digest === undefined) throw new PeerProtocolError(`${record.kind} needs a digest`);
    return guard(() => parseDigest(record.digest ?? ""), "digest");
  };
  const tag = (): string => {
    if (record.tag === undefined || !isTag(record.tag))
      throw new PeerProtocolError(`${record.kind} needs a tag`);
    return record.tag;
  };
  switch (record.kind) {
    case "blob-link":
    case "blob-unlink":
    case "blob-expire":
    case "manifest-expire":
      return { kind: record.kind, repository, digest: digest(), stamp };
    case "manifest-delete":
      return { kind: "manifest-delete", repository, digest: digest(), stamp, ...request };
    case "manifest-put":
      if (record.bytes === undefined || record.mediaType === undefined) return undefined;
      return {
        kind: "manifest-put",
        repository,
        digest: digest(),
        stamp,
        mediaType: record.mediaType,
        bytes: Buffer.from(record.bytes, "base64"),
        ...request,
      };
    case "tag-put":
      return { kind: "tag-put", repository, tag: tag(), digest: digest(), stamp, ...request };
    case "tag-delete":
      return { kind: "tag-delete", repository, tag: tag(), stamp, ...request };
    default:
      throw new PeerProtocolError(`unknown record kind ${String(record.kind).slice(0, 40)}`);
  }
}

const controlKindPattern = /^[a-z][a-z0-9-]{0,31}$/;

/**
 * A control record's change: its repository is `_control:<kind>`, its tag the record's
 * name. A put whose record was written again since carries no value and is skipped (the
 * newer write follows in the feed).
 */
function toControlChange(record: WireRecord): ReplicatedChange | undefined {
  const prefix = `${controlRepository}:`;
  const controlKind = record.repository.startsWith(prefix)
    ? record.repository.slice(prefix.length)
    : "";
  if (!controlKindPattern.test(controlKind)) throw new PeerProtocolError("bad control kind");
  const name = record.tag ?? "";
  if (!isControlName(name)) throw new PeerProtocolError("bad control record name");
  const { stamp } = record;
  if (record.kind === "control-delete") {
    return { kind: "control-delete", controlKind, name, value: null, stamp };
  }
  if (record.value === undefined) return undefined;
  try {
    JSON.parse(record.value);
  } catch {
    throw new PeerProtocolError("control record value is not JSON");
  }
  return { kind: "control-put", controlKind, name, value: record.value, stamp };
}

/** A control record's name: printable, without separators, at most 128 characters. */
export function isControlName(name: string): boolean {
  return /^[A-Za-z0-9._@-]{1,128}$/.test(name);
}

function guard<T>(parse: () => T, field: string): T {
  try {
    return parse();
  } catch {
    throw new PeerProtocolError(`bad ${field}`);
  }
}

function isSeq(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
