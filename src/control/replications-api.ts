// The admin API of the replica set, in the spirit of `az acr replication` (admin role):
//
//   GET    /_meridian/admin/replications          [replication]
//   GET    /_meridian/admin/replications/<name>   replication
//   POST   /_meridian/admin/replications          {location, name?, regionEndpointEnabled?,
//                                                   latitude?, longitude?} -> 201 replication
//                                                   (+ joinToken, joinCommand without a
//                                                   local supervisor)
//   PATCH  /_meridian/admin/replications/<name>   {regionEndpointEnabled} -> replication
//   DELETE /_meridian/admin/replications/<name>   202 replication (Deleting; gone once drained)
//
// Reads are answered by any replica from its copy of the replica set, each replica's live
// status read from the replica itself. Writes are made by the home replica (forwarded
// there from any other).
import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import type { ApiExtension } from "../api/api-server.ts";
import { readBody } from "../api/request-body.ts";
import { sendJson } from "../api/responses.ts";
import type { Authorizer } from "../auth/authorizer.ts";
import { OciError } from "../oci/oci-error.ts";
import { forwardToHome, type HomeReplica } from "./home-forwarding.ts";
import { parseJsonBody } from "./json-body.ts";
import type { ReplicaLifecycle } from "./replica-lifecycle.ts";
import type { ReplicaSet } from "./replica-set.ts";
import { type ReplicationView, viewOf } from "./replication-view.ts";

export const replicationsPrefix = "/_meridian/admin/replications";

const createBody = z
  .object({
    location: z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, "a region name such as eastus"),
    name: z.string().optional(),
    regionEndpointEnabled: z.boolean().default(true),
    latitude: z.number().min(-90).max(90).optional(),
    longitude: z.number().min(-180).max(180).optional(),
  })
  .strict();
const updateBody = z.object({ regionEndpointEnabled: z.boolean() }).strict();

export interface ReplicationsApiOptions {
  replicaSet: ReplicaSet;
  authorizer: Authorizer;
  /** The home replica's lifecycle; undefined on the others (and without replication). */
  lifecycle: ReplicaLifecycle | undefined;
  homeOf: () => HomeReplica | undefined;
}

export function createReplicationsApi(options: ReplicationsApiOptions): ApiExtension {
  return {
    prefix: replicationsPrefix,
    async handle(req, res, ctx) {
      await options.authorizer.requireAdmin(req, ctx.client);
      const rest = ctx.path.slice(replicationsPrefix.length);
      if (rest !== "" && !rest.startsWith("/")) {
        throw new OciError("NAME_UNKNOWN", { path: ctx.path.slice(0, 200) }, { status: 404 });
      }
      const name = decodeURIComponent(rest.slice(1));
      if (req.method === "GET") {
        await read(options, name, res);
        return;
      }
      const home = options.homeOf();
      if (home) {
        await forwardToHome(home, req, res);
        return;
      }
      const lifecycle = options.lifecycle;
      if (!lifecycle) {
        throw new OciError(
          "UNSUPPORTED",
          { reason: "this registry does not replicate: set replication.secret to add replicas" },
          { status: 400 },
        );
      }
      if (req.method === "POST" && name === "") {
        await create(options, lifecycle, req, res);
      } else if (req.method === "PATCH" && name !== "") {
        const body = parseJsonBody(updateBody, await readBody(req, 4096));
        const record = await options.replicaSet.get(name);
        if (!record) throw unknown(name);
        await options.replicaSet.put({
          ...record,
          globalEndpointRouting: body.regionEndpointEnabled,
        });
        sendJson(
          res,
          200,
          await viewOf({
            ...record,
            globalEndpointRouting: body.regionEndpointEnabled,
          }),
        );
      } else if (req.method === "DELETE" && name !== "") {
        const record = await lifecycle.remove(name);
        sendJson(res, 202, await viewOf(record));
      } else {
        throw new OciError("UNSUPPORTED", { method: req.method });
      }
    },
  };
}

async function read(options: ReplicationsApiOptions, name: string, res: ServerResponse) {
  const records = await options.replicaSet.list();
  if (name === "") {
    const views: ReplicationView[] = await Promise.all(records.map((record) => viewOf(record)));
    sendJson(res, 200, views);
    return;
  }
  const record = records.find((r) => r.region === name);
  if (!record) throw unknown(name);
  sendJson(res, 200, await viewOf(record));
}

async function create(
  options: ReplicationsApiOptions,
  lifecycle: ReplicaLifecycle,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const body = parseJsonBody(createBody, await readBody(req, 4096));
  if (body.name !== undefined && body.name !== body.location) {
    throw new OciError(
      "UNSUPPORTED",
      {
        reason: "a replication is named after its location: leave --name out or give the location",
      },
      { status: 400 },
    );
  }
  const { record, joinToken } = await lifecycle.create({
    ...body,
    regionEndpointEnabled: body.regionEndpointEnabled ?? true,
  });
  const view = await viewOf(record);
  if (!joinToken) {
    sendJson(res, 201, view);
    return;
  }
  const home = (await options.replicaSet.list()).find((r) => r.home);
  const homeUrl = home?.endpoint ?? "<home endpoint>";
  sendJson(res, 201, {
    ...view,
    joinToken,
    joinCommand: `meridian serve --join ${homeUrl} --join-token ${joinToken} --region ${record.region} --listen 0.0.0.0:5000 --endpoint https://<this machine>:5000 --data ./data`,
  });
}

function unknown(name: string): OciError {
  return new OciError(
    "NAME_UNKNOWN",
    { reason: `no replication named '${name}'`, replication: name },
    { status: 404 },
  );
}
