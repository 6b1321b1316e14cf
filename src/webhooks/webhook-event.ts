// One logical registry event as webhooks see it, its event key, and the body sent for it
// in ACR's shape (id, timestamp, action, target, request) plus `region` and `eventKey`.
//
// The event key is derived from the replicated change alone: the action, repository,
// digest (or deleted tag) and the change's stamp, which the origin replica made and every
// region stores unchanged. So the same push has the same key in every region and on every
// retry, and a consumer fed by several regional webhooks can deduplicate on it.
import { createHash, randomUUID } from "node:crypto";
import type { ChangeRequest } from "../metadata/metadata-store.ts";

export interface LogicalEvent {
  action: "push" | "delete";
  repository: string;
  /** The manifest pushed or deleted (absent for a tag delete). */
  digest?: string | undefined;
  /** The tag pushed or deleted; absent for a push by digest and a manifest delete. */
  tag?: string | undefined;
  /** The stamp of the change at its origin. */
  stamp: string;
  /** The client request that made it, as the origin recorded it. */
  request?: ChangeRequest | undefined;
}

export interface ManifestFacts {
  mediaType: string;
  size: number;
}

export function eventKeyOf(event: LogicalEvent): string {
  // A push by tag is one manifest put and one tag put with the same stamp: both give the
  // key of the push, whichever of the two a region turns into the event.
  const subject =
    event.action === "delete" && event.digest === undefined
      ? `tag:${event.tag ?? ""}`
      : (event.digest ?? "");
  return createHash("sha256")
    .update(`${event.action}\n${event.repository}\n${subject}\n${event.stamp}`)
    .digest("hex")
    .slice(0, 32);
}

export interface PayloadContext {
  /** The event id (unique per webhook delivery record). */
  id: string;
  region: string;
  /** The registry host names the request as made to. */
  host: string;
  /** When the event became true in this region. */
  now: number;
}

/** The JSON body delivered for an event. */
export function payloadOf(
  event: LogicalEvent,
  facts: ManifestFacts | undefined,
  context: PayloadContext,
): string {
  const target: Record<string, unknown> = { repository: event.repository };
  if (facts) {
    target.mediaType = facts.mediaType;
    target.size = facts.size;
    target.length = facts.size;
  }
  if (event.digest) target.digest = event.digest;
  if (event.tag) target.tag = event.tag;
  return JSON.stringify({
    id: context.id,
    timestamp: new Date(context.now).toISOString(),
    action: event.action,
    target,
    // A change recorded before requests were kept: its stamp identifies the write instead.
    request: event.request ?? {
      id: event.stamp,
      host: context.host,
      method: event.action === "push" ? "PUT" : "DELETE",
      useragent: "",
    },
    region: context.region,
    eventKey: eventKeyOf(event),
  });
}

/** The body of a ping: the same shape, action `ping`, a fresh key. */
export function pingPayload(context: Omit<PayloadContext, "id">): {
  id: string;
  body: string;
  eventKey: string;
} {
  const id = randomUUID();
  const eventKey = randomUUID().replace(/-/g, "");
  const body = JSON.stringify({
    id,
    timestamp: new Date(context.now).toISOString(),
    action: "ping",
    target: {},
    request: { id, host: context.host, method: "POST", useragent: "" },
    region: context.region,
    eventKey,
  });
  return { id, body, eventKey };
}
