// The change feed a replica serves its peers: pages of change records after a seq, with
// the manifests, control values and small blobs the records need inlined, so that a small
// image reaches a follower in one trip.
//
// - One page (`wait`: a long-poll of up to 30 s for a record beyond `since`).
// - A stream of pages (`stream=1`, NDJSON): each page is written as soon as its records
//   are committed, and the next follows while the follower applies this one, so a commit
//   reaches a caught-up follower after half a round trip instead of waiting for its next
//   poll to cross the WAN (1 to 1.5 round trips). A page without records is written
//   every `wait` ms as a heartbeat (with the head, for the lag). The stream ends after a
//   few minutes and the follower opens the next from its checkpoint. A follower that does
//   not read slows the writes down (each write waits for the socket to drain).
//
// A peer of an older build ignores `stream` and answers one page: followers accept both.
import { once } from "node:events";
import type { ServerResponse } from "node:http";
import { setTimeout as delay } from "node:timers/promises";
import type { ExtensionContext } from "../api/api-server.ts";
import { sendJson } from "../api/responses.ts";
import type { ChangeRecord } from "../metadata/metadata-store.ts";
import type { Digest } from "../oci/digest.ts";
import type { ReplicaState } from "../registry/replica-state.ts";
import { BlobNotFoundError } from "../storage/blob-store.ts";
import type { ChangeWaiter } from "./change-waiter.ts";
import { integerParam } from "./query-params.ts";
import { feedProtocol, feedStreamType, toWire, type WireRecord } from "./wire-format.ts";

export interface FeedSource {
  state: ReplicaState;
  waiter: ChangeWaiter;
}

const maxFeedPage = 500;
const maxWaitMs = 30_000;
const maxPageBytes = 8 * 1024 * 1024;
/** How long one stream lasts before the follower reconnects (bounds a stuck connection). */
const streamMs = 5 * 60_000;
/**
 * Blobs up to this size travel inside the feed record that links them (once a page), so
 * that a small image reaches a waiting follower in one trip instead of one more round trip
 * per blob.
 */
export const maxInlineBlobBytes = 1024 * 1024;

export async function serveFeed(
  res: ServerResponse,
  ctx: ExtensionContext,
  source: FeedSource,
): Promise<void> {
  const since = integerParam(ctx.query, "since", 0);
  const limit = Math.min(integerParam(ctx.query, "limit", maxFeedPage), maxFeedPage);
  const wait = Math.min(integerParam(ctx.query, "wait", 0), maxWaitMs);
  if (ctx.query.get("stream") === "1") return streamPages(res, ctx, source, { since, wait });
  let records = await source.state.changesSince(since, limit);
  if (records.length === 0 && wait > 0) {
    await source.waiter.waitBeyond(since, wait, ctx.signal);
    records = await source.state.changesSince(since, limit);
  }
  sendJson(res, 200, await page(source.state, records));
}

async function streamPages(
  res: ServerResponse,
  ctx: ExtensionContext,
  source: FeedSource,
  options: { since: number; wait: number },
): Promise<void> {
  const heartbeatMs = Math.max(options.wait, 1_000);
  const endAt = Date.now() + streamMs;
  res.writeHead(200, {
    "Content-Type": feedStreamType,
    "Cache-Control": "no-store",
    // A proxy between the regions (nginx) must pass each page on as it comes.
    "X-Accel-Buffering": "no",
  });
  let since = options.since;
  let first = true;
  while (!ctx.signal.aborted && Date.now() < endAt) {
    let records = await source.state.changesSince(since, maxFeedPage);
    // The first page goes at once, so that the follower learns the head and log.
    if (records.length === 0 && !first) {
      const wokenAt = Date.now();
      await source.waiter.waitBeyond(since, heartbeatMs, ctx.signal);
      if (ctx.signal.aborted) break;
      records = await source.state.changesSince(since, maxFeedPage);
      // A wake that found nothing to send (the head moved past records no longer kept)
      // waits out the heartbeat rather than writing empty pages in a loop, then writes one.
      if (records.length === 0 && Date.now() - wokenAt < heartbeatMs) {
        await delay(heartbeatMs - (Date.now() - wokenAt), undefined, { signal: ctx.signal }).catch(
          () => undefined,
        );
      }
    }
    first = false;
    const next = await page(source.state, records);
    const last = next.records.at(-1);
    if (last) since = last.seq;
    if (!res.write(`${JSON.stringify(next)}\n`)) {
      await once(res, "drain", { signal: ctx.signal }).catch(() => undefined);
    }
  }
  res.end();
}

/** One page of the feed: the records, what they need inlined, the head and the log. */
async function page(state: ReplicaState, records: readonly ChangeRecord[]) {
  const wire: WireRecord[] = [];
  let bytes = 0;
  const inlined = new Set<string>();
  for (const record of records) {
    // A page stops early once its manifests and blobs reach a few MiB; the follower asks again.
    if (bytes >= maxPageBytes) break;
    if (record.kind === "manifest-put" && record.digest) {
      const stored = await state.manifest(record.repository, { digest: record.digest });
      bytes += stored?.bytes.length ?? 0;
      wire.push(toWire(record, stored));
    } else if (record.kind === "control-put" && record.control) {
      // The value the record wrote, while it is still the register's (else a newer write
      // follows in the feed).
      const current = await state.controlRecord(record.control.kind, record.control.name);
      const value = current?.stamp === record.stamp ? (current.value ?? undefined) : undefined;
      bytes += value?.length ?? 0;
      wire.push(toWire(record, undefined, undefined, value));
    } else if (record.kind === "blob-link" && record.digest && !inlined.has(record.digest)) {
      const blob = await inlineBlob(state, record.digest);
      if (blob) {
        inlined.add(record.digest);
        bytes += blob.length;
      }
      wire.push(toWire(record, undefined, blob));
    } else {
      wire.push(toWire(record));
    }
  }
  return {
    protocol: feedProtocol,
    records: wire,
    head: await state.headSeq(),
    log: await state.logId(),
  };
}

/** A small blob's bytes, to travel inside its link record; undefined for a large or absent one. */
async function inlineBlob(state: ReplicaState, digest: Digest): Promise<Buffer | undefined> {
  const info = await state.blob(digest);
  if (!info || info.size > maxInlineBlobBytes) return undefined;
  try {
    const chunks: Buffer[] = [];
    for await (const chunk of await state.readBlob(digest)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  } catch (error) {
    if (error instanceof BlobNotFoundError) return undefined;
    throw error;
  }
}
