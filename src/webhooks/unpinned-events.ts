// The events of a webhook without a location, wherever they are kept. Such a webhook fires
// from the region where each change happened, so its events sit in the outboxes of every
// region: a listing asks every replica (`local=1` marks a replica's answer for itself) and
// merges them newest first; a redelivery goes to the region that holds the event.
import type { IncomingMessage } from "node:http";
import { byCodeUnits } from "../code-unit-order.ts";
import { fanOut, type PeerEndpoint } from "../control/region-fanout.ts";
import type { WebhookService } from "./webhook-service.ts";

type EventView = Awaited<ReturnType<WebhookService["events"]>>[number];

const peerTimeoutMs = 5_000;

export interface EverywhereOptions {
  service: WebhookService;
  peers: readonly PeerEndpoint[];
  req: IncomingMessage;
  /** The request's path with its query, as a peer gets it. */
  path: string;
}

/** Every region's events of the webhook, newest first, and the regions that did not answer. */
export async function eventsEverywhere(
  options: EverywhereOptions & { name: string; limit: number },
): Promise<{ events: EventView[]; unanswered: string[] }> {
  const answers = await fanOut({
    self: options.service.region,
    peers: options.peers,
    only: undefined,
    local: async () => ({ events: await options.service.events(options.name, options.limit) }),
    method: "GET",
    path: options.path,
    req: options.req,
    timeoutMs: peerTimeoutMs,
  });
  const events: EventView[] = [];
  const unanswered: string[] = [];
  for (const answer of answers) {
    if ("error" in answer) unanswered.push(answer.region);
    else events.push(...answer.events);
  }
  events.sort((a, b) => byCodeUnits(b.createdAt, a.createdAt));
  return { events: events.slice(0, options.limit), unanswered };
}

/** Queues the event again in the region that holds it; the region, or undefined if none. */
export async function redeliverSomewhere(
  options: EverywhereOptions & { name: string; id: string },
): Promise<string | undefined> {
  const answers = await fanOut({
    self: options.service.region,
    peers: options.peers,
    only: undefined,
    local: async () => ({ found: await options.service.redeliver(options.name, options.id) }),
    method: "POST",
    path: options.path,
    req: options.req,
    timeoutMs: peerTimeoutMs,
  });
  const holder = answers.find((answer) => "found" in answer && answer.found);
  return holder?.region;
}
