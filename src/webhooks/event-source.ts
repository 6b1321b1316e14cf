// Turns this replica's metadata change log into outbox events, with a durable cursor kept
// in the outbox (events and cursor in one transaction): every change becomes its events
// once, across restarts and kill -9. A change is in the log only once it is true here:
// the remote-apply path links every blob before it stores a manifest and stores the
// manifest before it sets a tag, so a push read from this log is pullable from this
// replica's endpoint, and a delete has taken effect.
//
// Which webhooks an event goes to from here: those pinned to this replica's region, and
// those without a location when this replica made the change (the stamp names its
// replica), so that an unpinned webhook fires once, from where the push happened.
//
// A push by tag is a manifest put and a tag put with one stamp. In the origin's log they
// are one commit; a follower applies them one after the other. A manifest put with no tag
// put of the same stamp behind it is therefore held for `settleMs` (on a follower only)
// before it is taken for a push by digest, so that a regional webhook names the tag and
// fires once the tag resolves.
import { randomUUID } from "node:crypto";
import type { ChangeRecord, MetadataStore } from "../metadata/metadata-store.ts";
import type { Digest } from "../oci/digest.ts";
import { parseStamp } from "../registry/hybrid-clock.ts";
import type { NewEvent, OutboxStore } from "./outbox-store.ts";
import { eventKeyOf, type LogicalEvent, payloadOf } from "./webhook-event.ts";
import { type Webhook, wants } from "./webhook-record.ts";

export interface EventSourceOptions {
  metadata: MetadataStore;
  outbox: OutboxStore;
  /** The webhooks as they are now (read at every batch, so a new one is seen at once). */
  webhooks: () => Promise<Webhook[]>;
  region: string;
  replicaId: string;
  host: string;
  /** How long a manifest put may wait for its tag put (default 1000 ms). */
  settleMs?: number;
  now?: () => number;
  /** Called when events were added. */
  onEnqueued: () => void;
  onError: (error: unknown) => void;
}

const batchSize = 256;

export class EventSource {
  private running: Promise<void> | undefined;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = 0;
  private stopped = false;
  /** When each held manifest put was first seen (by seq), to end its wait. */
  private readonly firstSeen = new Map<number, number>();
  private readonly now: () => number;
  private readonly settleMs: number;
  private cursor: { seq: number; log: string } | undefined;
  private savedAt = 0;
  private unsaved = false;

  constructor(private readonly options: EventSourceOptions) {
    this.now = options.now ?? Date.now;
    this.settleMs = options.settleMs ?? 1000;
  }

  /** Asks for a pass over the new changes (coalesced: one pass runs at a time). */
  poke(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.drain()
      .catch((error: unknown) => this.options.onError(error))
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.poke();
        }
      });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
    if (this.unsaved && this.cursor) await this.options.outbox.enqueue([], this.cursor);
    this.unsaved = false;
  }

  /** Starts at the head of the log the first time (no events for history). */
  private async position(): Promise<{ seq: number; log: string }> {
    if (this.cursor) return this.cursor;
    const log = await this.options.metadata.logId();
    const saved = await this.options.outbox.cursor();
    if (saved && saved.log === log) {
      this.cursor = saved;
      return saved;
    }
    const start = { seq: await this.options.metadata.headSeq(), log };
    await this.options.outbox.enqueue([], start);
    this.cursor = start;
    return start;
  }

  private async drain(): Promise<void> {
    let cursor = await this.position();
    for (;;) {
      if (this.stopped) return;
      const { events, upTo, held } = await this.next(cursor.seq);
      if (upTo === undefined) {
        await this.flush();
        return;
      }
      if (upTo > cursor.seq) {
        cursor = { seq: upTo, log: cursor.log };
        this.cursor = cursor;
        // A batch without events moves the saved cursor at most once a second, so that a
        // push burst no webhook wants costs no outbox write per commit. After a crash such
        // changes are read again; they add nothing unless a webhook was made meanwhile.
        const now = this.now();
        if (events.length > 0 || now - this.savedAt >= 1000) {
          this.savedAt = now;
          this.unsaved = false;
          if ((await this.options.outbox.enqueue(events, cursor)) > 0) this.options.onEnqueued();
        } else {
          this.unsaved = true;
          this.wakeIn(1000);
        }
      }
      if (held !== undefined) {
        this.wakeIn(held);
        return;
      }
    }
  }

  /**
   * The events after `seq`; `upTo` undefined when there is nothing new. Without webhooks
   * no change has events: the cursor jumps to the head, read before the webhooks so that
   * a change committed after a webhook was made is never skipped. In a profile of
   * small-image pushes reading every change for no webhook was 5% of the event loop.
   */
  private async next(
    seq: number,
  ): Promise<{ events: NewEvent[]; upTo: number | undefined; held: number | undefined }> {
    const head = await this.options.metadata.headSeq();
    if (head <= seq) return { events: [], upTo: undefined, held: undefined };
    if ((await this.options.webhooks()).length === 0) {
      this.firstSeen.clear();
      return { events: [], upTo: head, held: undefined };
    }
    const batch = await this.options.metadata.changesSince(seq, batchSize);
    if (batch.length === 0) return { events: [], upTo: undefined, held: undefined };
    return this.derive(batch);
  }

  /** Saves a cursor that moved over changes without events, once it is a second old. */
  private async flush(): Promise<void> {
    if (!this.unsaved || !this.cursor) return;
    const now = this.now();
    if (now - this.savedAt < 1000) {
      this.wakeIn(this.savedAt + 1000 - now);
      return;
    }
    this.savedAt = now;
    this.unsaved = false;
    await this.options.outbox.enqueue([], this.cursor);
  }

  /** Pokes again in `ms`, unless an earlier poke is already due. */
  private wakeIn(ms: number): void {
    const at = this.now() + Math.max(1, ms);
    if (this.timer && this.timerAt <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.poke();
    }, at - this.now());
    this.timer.unref();
  }

  /**
   * The events of a batch up to the first change that must wait; `upTo` is the last seq
   * consumed, `held` how long until the held change may be looked at again.
   */
  private async derive(
    batch: ChangeRecord[],
  ): Promise<{ events: NewEvent[]; upTo: number; held: number | undefined }> {
    const webhooks = await this.options.webhooks();
    const events: NewEvent[] = [];
    const full = batch.length === batchSize;
    let upTo = (batch[0]?.seq ?? 1) - 1;
    for (const [index, change] of batch.entries()) {
      if (change.kind === "manifest-put") {
        const tagged = batch
          .slice(index + 1)
          .some(
            (later) =>
              later.kind === "tag-put" &&
              later.repository === change.repository &&
              later.digest === change.digest &&
              later.stamp === change.stamp,
          );
        if (!tagged) {
          // Near the end of a full batch the tag put may be in the next one: read on from here.
          if (full && index >= batchSize / 2) return { events, upTo, held: undefined };
          // Made here, its tag put would be in the same commit: nothing to wait for.
          const mine = parseStamp(change.stamp)?.replicaId === this.options.replicaId;
          if (!full && !mine) {
            const seen = this.firstSeen.get(change.seq) ?? this.now();
            this.firstSeen.set(change.seq, seen);
            const wait = seen + this.settleMs - this.now();
            if (wait > 0) return { events, upTo, held: wait };
          }
          this.firstSeen.delete(change.seq);
          events.push(...(await this.eventsOf(webhooks, logical(change, "push"))));
        }
      } else if (change.kind === "tag-put") {
        events.push(...(await this.eventsOf(webhooks, logical(change, "push"))));
      } else if (change.kind === "manifest-delete" || change.kind === "tag-delete") {
        events.push(...(await this.eventsOf(webhooks, logical(change, "delete"))));
      }
      upTo = change.seq;
    }
    return { events, upTo, held: undefined };
  }

  private async eventsOf(webhooks: Webhook[], event: LogicalEvent): Promise<NewEvent[]> {
    const origin = parseStamp(event.stamp)?.replicaId;
    const targets = webhooks.filter(
      (webhook) =>
        wants(webhook, event.action, event.repository, event.tag) &&
        (webhook.location !== undefined
          ? webhook.location === this.options.region
          : origin === this.options.replicaId),
    );
    if (targets.length === 0) return [];
    const stored =
      event.action === "push" && event.digest
        ? await this.options.metadata.getManifest(event.repository, event.digest as Digest)
        : undefined;
    const facts = stored ? { mediaType: stored.mediaType, size: stored.bytes.length } : undefined;
    const now = this.now();
    const eventKey = eventKeyOf(event);
    return targets.map((webhook) => {
      const id = randomUUID();
      return {
        id,
        webhook: webhook.name,
        eventKey,
        repository: event.repository,
        action: event.action,
        payload: payloadOf(event, facts, {
          id,
          region: this.options.region,
          host: this.options.host,
          now,
        }),
        createdAt: now,
      };
    });
  }
}

function logical(change: ChangeRecord, action: "push" | "delete"): LogicalEvent {
  return {
    action,
    repository: change.repository,
    digest: change.kind === "tag-delete" ? undefined : change.digest,
    tag:
      change.kind === "manifest-put" || change.kind === "manifest-delete" ? undefined : change.tag,
    stamp: change.stamp,
    request: change.request,
  };
}
