// The admin API of imports (admin role), served by the replica that receives the request:
//
//   POST /_meridian/admin/imports        {source, image?, username?, password?, force?,
//                                         platform?, allPlatforms?, withReferrers?,
//                                         sourceInsecure?} -> 202 the job (state "queued")
//   GET  /_meridian/admin/imports        the recent jobs, newest first
//   GET  /_meridian/admin/imports/<id>   the job: state queued|running|succeeded|failed,
//                                         progress, digest, reason
//
// An import writes images, like a push, so it runs here and is not forwarded to the home
// replica. The source's password is never returned; it is kept (mode 0600) only while the
// job is unfinished, so that a restart can carry the job on.
import type { IncomingMessage } from "node:http";
import type { ApiExtension } from "../api/api-server.ts";
import { changeRequestOf } from "../api/change-request.ts";
import { readBody } from "../api/request-body.ts";
import { sendJson } from "../api/responses.ts";
import { OciError } from "../oci/oci-error.ts";
import type { ImportJobs } from "./import-jobs.ts";

export const importsApiPrefix = "/_meridian/admin/imports";

export interface ImportsApiOptions {
  jobs: ImportJobs;
  authorizer: { requireAdmin(req: IncomingMessage, client: string): Promise<void> };
}

export function createImportsApi(options: ImportsApiOptions): ApiExtension {
  return {
    prefix: importsApiPrefix,
    async handle(req, res, ctx) {
      const rest = ctx.path.slice(importsApiPrefix.length);
      if (rest !== "" && !rest.startsWith("/")) {
        throw new OciError("NAME_UNKNOWN", { path: ctx.path.slice(0, 200) }, { status: 404 });
      }
      await options.authorizer.requireAdmin(req, ctx.client);
      const id = rest.replace(/^\/+/, "");
      if (id === "") {
        if (req.method === "GET") {
          sendJson(res, 200, options.jobs.list());
          return;
        }
        if (req.method !== "POST") throw new OciError("UNSUPPORTED", { method: req.method });
        const body = parseJson(await readBody(req, 64 * 1024));
        const job = await options.jobs.submit(
          body,
          changeRequestOf({ req, requestId: ctx.requestId }),
        );
        sendJson(res, 202, job, { Location: `${importsApiPrefix}/${job.id}` });
        return;
      }
      if (req.method !== "GET") throw new OciError("UNSUPPORTED", { method: req.method });
      const job = /^[0-9a-f-]{36}$/.test(id) ? options.jobs.get(id) : undefined;
      if (!job) throw new OciError("NAME_UNKNOWN", { import: id.slice(0, 80) }, { status: 404 });
      sendJson(res, 200, job);
    },
  };
}

function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString("utf8"));
  } catch {
    throw new OciError("UNSUPPORTED", { reason: "the body must be JSON" }, { status: 400 });
  }
}
