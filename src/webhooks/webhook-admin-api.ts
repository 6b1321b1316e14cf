// The admin API of webhooks (admin role), before the generic admin extension:
//
//   GET    /_meridian/admin/webhooks                          [view]
//   POST   /_meridian/admin/webhooks                          {name, uri, actions, ...} -> 201 view
//   GET    /_meridian/admin/webhooks/<name>                   view
//   PATCH  /_meridian/admin/webhooks/<name>                   {any field; null clears} -> view
//   DELETE /_meridian/admin/webhooks/<name>                   204
//   POST   /_meridian/admin/webhooks/<name>/ping              the attempt
//   GET    /_meridian/admin/webhooks/<name>/events?limit=N    [event with its attempts]
//   POST   /_meridian/admin/webhooks/<name>/events/<id>/redeliver  202
//
// Writes are made by the home replica (forwarded there from any other). Events live in
// the outbox of the replica that delivers them: for a webhook pinned to another region,
// ping, events and redeliver are forwarded to that region's replica; a webhook without a
// location fires from every region, so its events are listed from every replica and a
// redelivery goes to the one that holds the event (unpinned-events.ts). No read shows the
// secret or header values.
import type { IncomingMessage } from "node:http";
import type { ApiExtension } from "../api/api-server.ts";
import { readBody } from "../api/request-body.ts";
import { sendEmpty, sendJson } from "../api/responses.ts";
import { forwardToHome, type HomeReplica } from "../control/home-forwarding.ts";
import { parseJsonBody } from "../control/json-body.ts";
import type { PeerEndpoint } from "../control/region-fanout.ts";
import { OciError } from "../oci/oci-error.ts";
import { eventsEverywhere, redeliverSomewhere } from "./unpinned-events.ts";
import { createBody, updateBody, viewOf } from "./webhook-record.ts";
import type { WebhookService } from "./webhook-service.ts";

export const webhooksApiPrefix = "/_meridian/admin/webhooks";

export interface WebhookAdminOptions {
  service: WebhookService;
  authorizer: { requireAdmin(req: IncomingMessage, client: string): Promise<void> };
  /** Where writes are made: this replica (undefined) or the home replica. */
  home: () => HomeReplica | undefined;
  /** Where this replica reaches another region's replica (the replica set says). */
  peerUrl: (region: string) => string | undefined;
  /** The other regions' replicas. */
  peers: () => readonly PeerEndpoint[];
}

export function createWebhookAdminApi(options: WebhookAdminOptions): ApiExtension {
  const { service } = options;
  return {
    prefix: webhooksApiPrefix,
    async handle(req, res, ctx) {
      const rest = ctx.path.slice(webhooksApiPrefix.length);
      if (rest !== "" && !rest.startsWith("/")) notFound(ctx.path);
      await options.authorizer.requireAdmin(req, ctx.client);
      const [name, sub, id, verb, ...extra] = rest.split("/").slice(1).map(decodeURIComponent);
      const method = req.method ?? "GET";
      if (name === undefined || name === "") {
        if (method === "GET") return sendJson(res, 200, (await service.list()).map(viewOf));
        if (method !== "POST") unsupported(method);
        const home = options.home();
        if (home) return forwardToHome(home, req, res);
        const body = parseJsonBody(createBody, await readBody(req, 64 * 1024));
        return sendJson(res, 201, viewOf(await service.create(body)));
      }
      if (extra.length > 0) notFound(ctx.path);
      const webhook = await service.get(name);
      if (sub === undefined) {
        if (method === "GET") {
          if (!webhook) throw unknown(name);
          return sendJson(res, 200, viewOf(webhook));
        }
        if (method !== "PATCH" && method !== "DELETE") unsupported(method);
        const home = options.home();
        if (home) return forwardToHome(home, req, res);
        if (!webhook) throw unknown(name);
        if (method === "DELETE") {
          await service.remove(name);
          return sendEmpty(res, 204);
        }
        const update = parseJsonBody(updateBody, await readBody(req, 64 * 1024));
        return sendJson(res, 200, viewOf(await service.update(webhook, update)));
      }
      if (!webhook) throw unknown(name);
      // Events are kept where they are delivered from: ask that region's replica.
      const at = webhook.location;
      if (at !== undefined && at !== service.region) {
        const url = options.peerUrl(at);
        if (!url) {
          throw new OciError("UNAVAILABLE", { reason: `no replica of region ${at} is known here` });
        }
        return forwardToHome({ region: at, url }, req, res);
      }
      if (sub === "ping" && id === undefined && method === "POST") {
        return sendJson(res, 200, await service.ping(webhook));
      }
      // A webhook without a location: the peers ask with local=1 for this region's part.
      const everywhere = at === undefined ? ctx.query.get("local") !== "1" : false;
      const region = service.region;
      if (sub === "events" && id === undefined && method === "GET") {
        const limit = Math.min(500, Math.max(1, Number(ctx.query.get("limit") ?? 50) || 50));
        if (at === undefined && !everywhere) {
          return sendJson(res, 200, {
            regions: [{ region, events: await service.events(name, limit) }],
          });
        }
        if (!everywhere) return sendJson(res, 200, await service.events(name, limit));
        const path = `${ctx.path}?limit=${limit}`;
        const merged = await eventsEverywhere({
          service,
          peers: options.peers(),
          req,
          path,
          name,
          limit,
        });
        const headers: Record<string, string> =
          merged.unanswered.length > 0
            ? { "Meridian-Unanswered-Regions": merged.unanswered.join(",") }
            : {};
        return sendJson(res, 200, merged.events, headers);
      }
      if (sub === "events" && id !== undefined && verb === "redeliver" && method === "POST") {
        if (at === undefined && !everywhere) {
          const found = await service.redeliver(name, id);
          return sendJson(res, 200, { regions: [{ region, found }] });
        }
        const found = everywhere
          ? (await redeliverSomewhere({
              service,
              peers: options.peers(),
              req,
              path: ctx.path,
              name,
              id,
            })) !== undefined
          : await service.redeliver(name, id);
        if (!found) {
          throw new OciError("NAME_UNKNOWN", { event: id.slice(0, 80) }, { status: 404 });
        }
        return sendJson(res, 202, { id, state: "pending" });
      }
      notFound(ctx.path);
    },
  };
}

function unknown(name: string): OciError {
  return new OciError("NAME_UNKNOWN", { webhook: name.slice(0, 80) }, { status: 404 });
}

function notFound(path: string): never {
  throw new OciError("NAME_UNKNOWN", { path: path.slice(0, 200) }, { status: 404 });
}

function unsupported(method: string): never {
  throw new OciError("UNSUPPORTED", { method });
}
