// The admin API of garbage collection, retention and storage (admin role), on every
// replica. Put these extensions before the generic admin extension (first match wins).
//
//   POST   /_meridian/admin/gc          {dryRun?, graceSeconds?, region?} -> {regions: [report]}
//   GET    /_meridian/admin/storage     ?region=R                          -> {regions: [usage]}
//   GET    /_meridian/admin/retention                                      -> [policy]
//   PUT    /_meridian/admin/retention   {repositories, untaggedDays}       -> policy
//   DELETE /_meridian/admin/retention   ?repositories=<pattern>            -> 204
//
// A pass and a storage report run in every region (or only `region`): the replica asked
// runs its own and asks each peer's regional endpoint for theirs (`local=1`), with the
// caller's credentials; an unreachable region is reported with an `error`. Policies are
// control records: writes are made by the home replica (forwarded there when this is not
// it), and replicate to every region.
import { z } from "zod";
import type { ApiExtension, ExtensionContext } from "../api/api-server.ts";
import { readBody } from "../api/request-body.ts";
import { sendEmpty, sendJson } from "../api/responses.ts";
import type { Authorizer } from "../auth/authorizer.ts";
import { forwardToHome, type HomeReplica } from "../control/home-forwarding.ts";
import { parseJsonBody } from "../control/json-body.ts";
import { fanOut, type PeerEndpoint } from "../control/region-fanout.ts";
import { OciError } from "../oci/oci-error.ts";
import type { GcService } from "./gc-service.ts";

const gcBody = z
  .object({
    dryRun: z.boolean().default(false),
    graceSeconds: z.number().int().min(0).optional(),
    region: z.string().min(1).optional(),
  })
  .strict();

const policyBody = z
  .object({
    repositories: z.string().min(1).max(256),
    untaggedDays: z.number().min(0).max(36_500),
  })
  .strict();

export interface GcAdminApiOptions {
  service: GcService;
  authorizer: Authorizer;
  /** The other regions' replicas, asked for their part of a pass or a report. */
  /** The other regions' replicas now (the replica set says). */
  peers: () => readonly PeerEndpoint[];
  /** Where policy writes are made: this replica (undefined) or the home replica. */
  home: () => HomeReplica | undefined;
}

/** A pass over a large store takes a while: peers get this long to answer. */
const passTimeoutMs = 30 * 60_000;

export function createGcAdminApi(options: GcAdminApiOptions): ApiExtension[] {
  const { service, authorizer } = options;
  const gc: ApiExtension = {
    prefix: "/_meridian/admin/gc",
    async handle(req, res, ctx) {
      await authorizer.requireAdmin(req, ctx.client);
      exact(ctx, "/_meridian/admin/gc");
      if (req.method !== "POST") throw new OciError("UNSUPPORTED", { method: req.method });
      const raw = await readBody(req, 4096);
      const body = parseJsonBody(gcBody, raw.length === 0 ? Buffer.from("{}") : raw);
      const regions = await fanOut({
        self: service.region,
        peers: local(ctx) ? [] : options.peers(),
        only: local(ctx) ? service.region : body.region,
        local: () => service.run(body),
        method: "POST",
        path: "/_meridian/admin/gc",
        body: { dryRun: body.dryRun, graceSeconds: body.graceSeconds },
        req,
        timeoutMs: passTimeoutMs,
      });
      sendJson(res, 200, { regions: unknownRegion(regions, body.region) });
    },
  };
  const storage: ApiExtension = {
    prefix: "/_meridian/admin/storage",
    async handle(req, res, ctx) {
      await authorizer.requireAdmin(req, ctx.client);
      exact(ctx, "/_meridian/admin/storage");
      if (req.method !== "GET") throw new OciError("UNSUPPORTED", { method: req.method });
      const only = ctx.query.get("region") ?? undefined;
      const regions = await fanOut({
        self: service.region,
        peers: local(ctx) ? [] : options.peers(),
        only: local(ctx) ? service.region : only,
        local: () => service.storage(),
        method: "GET",
        path: "/_meridian/admin/storage",
        req,
        timeoutMs: passTimeoutMs,
      });
      sendJson(res, 200, { regions: unknownRegion(regions, only) });
    },
  };
  const retention: ApiExtension = {
    prefix: "/_meridian/admin/retention",
    async handle(req, res, ctx) {
      await authorizer.requireAdmin(req, ctx.client);
      exact(ctx, "/_meridian/admin/retention");
      if (req.method === "GET") {
        sendJson(res, 200, await service.policies.list());
        return;
      }
      if (req.method !== "PUT" && req.method !== "DELETE") {
        throw new OciError("UNSUPPORTED", { method: req.method });
      }
      const home = options.home();
      if (home) {
        await forwardToHome(home, req, res);
        return;
      }
      if (req.method === "PUT") {
        const policy = parseJsonBody(policyBody, await readBody(req, 4096));
        await service.policies.set(policy);
        sendJson(res, 200, policy);
        return;
      }
      const pattern = ctx.query.get("repositories");
      if (!pattern) {
        throw new OciError(
          "UNSUPPORTED",
          { reason: "name the policy: ?repositories=<pattern>" },
          { status: 400 },
        );
      }
      if (!(await service.policies.disable(pattern))) {
        throw new OciError("NAME_UNKNOWN", { retention: pattern.slice(0, 256) }, { status: 404 });
      }
      sendEmpty(res, 204);
    },
  };
  return [gc, storage, retention];
}

/** The prefix matches `/gcfoo` too: only the path itself is ours. */
function exact(ctx: ExtensionContext, path: string): void {
  if (ctx.path !== path && ctx.path !== `${path}/`) {
    throw new OciError("NAME_UNKNOWN", { path: ctx.path.slice(0, 200) }, { status: 404 });
  }
}

function local(ctx: ExtensionContext): boolean {
  return ctx.query.get("local") === "1";
}

function unknownRegion<T>(answers: T[], region: string | undefined): T[] {
  if (region !== undefined && answers.length === 0) {
    throw new OciError(
      "UNSUPPORTED",
      { reason: `no replica of region ${region.slice(0, 64)} is known here` },
      { status: 400 },
    );
  }
  return answers;
}
