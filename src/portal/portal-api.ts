// The portal under /portal/ on every replica (and so through the global endpoint):
//
//   GET  /portal/                the page (built on first use, portal-build.ts)
//   GET  /portal/assets/<file>   its script and style sheet
//   GET  /portal/api/session     {authentication, user?: {name, admin}, csrf?, region}
//   POST /portal/api/login       {username, password} -> Set-Cookie session, {user, csrf}
//   POST /portal/api/logout      clears the cookie (needs the CSRF header)
//   GET  /portal/api/regions     [{name, displayName, latitude?, longitude?, available, reason?}]
//   GET  /portal/api/counters    {region, counters: {<meridian_replication_* name>: total}}
//   GET  /portal/api/lag-history [{at, lag: {<peer>: seconds}}] over the last hour
//
// Everything else the page does goes to the admin API and /v2/ with the session cookie
// (src/auth/portal-session.ts). With authentication off (no user exists) the session
// answer says so and the page opens without a login.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Registry as MetricsRegistry } from "prom-client";
import { z } from "zod";
import type { ApiExtension } from "../api/api-server.ts";
import { readBody } from "../api/request-body.ts";
import { sendJson } from "../api/responses.ts";
import type { Authorizer } from "../auth/authorizer.ts";
import type { Credentials } from "../auth/credentials.ts";
import { type PortalSessions, sessionCookie } from "../auth/portal-session.ts";
import { parseJsonBody } from "../control/json-body.ts";
import type { ReplicaSet } from "../control/replica-set.ts";
import { OciError } from "../oci/oci-error.ts";
import type { LagHistory } from "./lag-history.ts";
import { type PortalBundle, type PortalFile, portalBundle } from "./portal-build.ts";
import { regionChoices } from "./region-choices.ts";

export const portalPrefix = "/portal";

const loginBody = z
  .object({ username: z.string().min(1).max(128), password: z.string().min(1).max(1024) })
  .strict();

export interface PortalApiOptions {
  authorizer: Authorizer;
  credentials: Credentials;
  sessions: PortalSessions;
  replicaSet: ReplicaSet;
  /** Whether replicas can be added (replication is configured). */
  replicates: boolean;
  region: string;
  tls: boolean;
  /** This replica's metrics (the health page's counters: the global endpoint answers
   * /metrics with its own, so the page reads this replica's here). */
  metrics?: MetricsRegistry | undefined;
  /** Each peer's lag over the last hour, as this replica follows it. */
  lagHistory?: LagHistory | undefined;
  /** The built front end; default: built in this process on first use. */
  bundle?: () => Promise<PortalBundle>;
}

export function createPortalApi(options: PortalApiOptions): ApiExtension {
  const bundle = options.bundle ?? portalBundle;
  return {
    prefix: portalPrefix,
    async handle(req, res, ctx) {
      const path = ctx.path.slice(portalPrefix.length);
      if (path === "") {
        res.writeHead(308, { Location: "/portal/", "Content-Length": "0" });
        res.end();
        return;
      }
      if (!path.startsWith("/")) {
        throw new OciError("NAME_UNKNOWN", { path: ctx.path.slice(0, 200) }, { status: 404 });
      }
      if (path.startsWith("/api/")) {
        await api(options, path.slice(5), req, res, ctx.client);
        return;
      }
      if (req.method !== "GET" && req.method !== "HEAD") {
        throw new OciError("UNSUPPORTED", { method: req.method });
      }
      const name = path === "/" ? "index.html" : path.slice(1);
      const file = (await bundle()).get(name);
      if (!file)
        throw new OciError("NAME_UNKNOWN", { path: ctx.path.slice(0, 200) }, { status: 404 });
      serveFile(req, res, file);
    },
  };
}

async function api(
  options: PortalApiOptions,
  action: string,
  req: IncomingMessage,
  res: ServerResponse,
  client: string,
): Promise<void> {
  res.setHeader("Cache-Control", "no-store");
  const secure = options.tls || req.headers["x-forwarded-proto"] === "https";
  if (action === "session" && req.method === "GET") {
    sendJson(res, 200, await sessionAnswer(options, req));
  } else if (action === "login" && req.method === "POST") {
    // JSON only: a cross-site form cannot send it without a preflight that is refused.
    if (!String(req.headers["content-type"] ?? "").startsWith("application/json")) {
      throw new OciError(
        "UNSUPPORTED",
        { reason: "send the login as application/json" },
        { status: 415 },
      );
    }
    const body = parseJsonBody(loginBody, await readBody(req, 4096));
    const principal = await options.credentials.verify(body.username, body.password, client);
    if (principal?.kind !== "user") {
      throw new OciError("UNAUTHORIZED", { reason: "wrong user name or password" });
    }
    const stamp = options.credentials.secretStamp(principal.id) ?? "";
    const { token, session } = await options.sessions.issue(principal.id, stamp);
    res.setHeader(
      "Set-Cookie",
      sessionCookie(token, { secure, maxAgeSeconds: options.sessions.ttlSeconds }),
    );
    sendJson(res, 200, {
      authentication: true,
      user: { name: principal.name, admin: principal.admin },
      csrf: session.csrf,
      region: options.region,
    });
  } else if (action === "logout" && req.method === "POST") {
    // Checks the CSRF header: another site cannot log the user out either.
    await options.authorizer.sessionPrincipal(req);
    res.setHeader("Set-Cookie", sessionCookie("", { secure, maxAgeSeconds: 0 }));
    sendJson(res, 200, { authentication: options.credentials.configured });
  } else if (action === "regions" && req.method === "GET") {
    await options.authorizer.requireAdmin(req, client);
    sendJson(res, 200, regionChoices(await options.replicaSet.list(), options.replicates));
  } else if (action === "lag-history" && req.method === "GET") {
    await options.authorizer.requireAdmin(req, client);
    sendJson(res, 200, options.lagHistory?.samples() ?? []);
  } else if (action === "counters" && req.method === "GET") {
    await options.authorizer.requireAdmin(req, client);
    sendJson(res, 200, { region: options.region, counters: await replicationCounters(options) });
  } else {
    throw new OciError(
      "NAME_UNKNOWN",
      { path: `/portal/api/${action}`.slice(0, 200) },
      { status: 404 },
    );
  }
}

async function sessionAnswer(options: PortalApiOptions, req: IncomingMessage) {
  if (!options.credentials.configured) return { authentication: false, region: options.region };
  const found = await options.authorizer.sessionOf(req);
  if (!found) return { authentication: true, region: options.region };
  return {
    authentication: true,
    user: { name: found.principal.name, admin: found.principal.admin },
    csrf: found.session.csrf,
    region: options.region,
  };
}

/** The replication counters of this replica, each summed over its labels. */
async function replicationCounters(options: PortalApiOptions): Promise<Record<string, number>> {
  const totals: Record<string, number> = {};
  for (const metric of (await options.metrics?.getMetricsAsJSON()) ?? []) {
    if (!metric.name.startsWith("meridian_replication_") || !metric.name.endsWith("_total")) {
      continue;
    }
    totals[metric.name] = metric.values.reduce((sum, sample) => sum + sample.value, 0);
  }
  return totals;
}

function serveFile(req: IncomingMessage, res: ServerResponse, file: PortalFile): void {
  const headers: Record<string, string> = {
    "Content-Type": file.contentType,
    ETag: file.etag,
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    // The page runs its own script and style only, and no other site may frame it.
    "Content-Security-Policy":
      "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    Vary: "Accept-Encoding",
  };
  if (req.headers["if-none-match"] === file.etag) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  const gzip = /\bgzip\b/.test(String(req.headers["accept-encoding"] ?? ""));
  const body = gzip ? file.gzip : file.body;
  if (gzip) headers["Content-Encoding"] = "gzip";
  headers["Content-Length"] = String(body.length);
  res.writeHead(200, headers);
  res.end(req.method === "HEAD" ? undefined : body);
}
