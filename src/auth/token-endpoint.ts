// The token endpoint of Docker token authentication (the `realm` of the challenges):
//
//   GET  /token?service=&scope=repository:app:pull,push[&scope=...][&offline_token=true]
//        with Basic credentials (or none, for anonymous pull) -> {token, access_token,
//        expires_in, issued_at[, refresh_token]}
//   POST /token  (form) grant_type=password&username=&password=  or
//                       grant_type=refresh_token&refresh_token=   [&scope=a b][&service=]
//        -> {access_token, token, expires_in, issued_at, scope[, refresh_token]}
import type { IncomingMessage } from "node:http";
import type { ApiExtension } from "../api/api-server.ts";
import { readBody } from "../api/request-body.ts";
import { sendJson } from "../api/responses.ts";
import { OciError } from "../oci/oci-error.ts";
import { type Credentials, parseBasic } from "./credentials.ts";
import { anonymousPuller, type Principal } from "./permissions.ts";
import type { TokenService } from "./token-service.ts";

export interface TokenEndpointOptions {
  credentials: Credentials;
  tokens: TokenService;
  anonymousPull: boolean;
}

const anonymous = anonymousPuller;
const nobody: Principal = { ...anonymousPuller, grants: [] };

export function createTokenEndpoint(options: TokenEndpointOptions): ApiExtension {
  const unauthorized = () =>
    new OciError(
      "UNAUTHORIZED",
      { reason: "invalid credentials" },
      {
        headers: { "WWW-Authenticate": 'Basic realm="meridian"' },
      },
    );
  const answer = async (principal: Principal, scopes: string[], withRefresh: boolean) => {
    const token = await options.tokens.issue(principal, scopes);
    const body: Record<string, unknown> = {
      token,
      access_token: token,
      expires_in: options.tokens.ttlSeconds,
      issued_at: new Date().toISOString(),
      scope: scopes.join(" "),
    };
    if (withRefresh && principal !== anonymous && principal !== nobody) {
      body.refresh_token = await options.tokens.issueRefresh(principal);
    }
    return body;
  };
  return {
    prefix: "/token",
    async handle(req, res, ctx) {
      if (ctx.path !== "/token") throw new OciError("NAME_UNKNOWN", {}, { status: 404 });
      if (req.method === "GET") {
        const principal = await basicPrincipal(req, ctx.client, options, unauthorized);
        const scopes = ctx.query
          .getAll("scope")
          .flatMap((s) => s.split(" "))
          .filter(Boolean);
        const body = await answer(principal, scopes, ctx.query.get("offline_token") === "true");
        sendJson(res, 200, body, { "Cache-Control": "no-store" });
        return;
      }
      if (req.method === "POST") {
        const form = new URLSearchParams((await readBody(req, 64 * 1024)).toString("utf8"));
        const scopes = (form.get("scope") ?? "").split(" ").filter(Boolean);
        let principal: Principal | undefined;
        if (form.get("grant_type") === "refresh_token") {
          const refresh = await options.tokens.verifyRefresh(form.get("refresh_token") ?? "");
          principal =
            refresh === undefined
              ? undefined
              : refresh.legacy
                ? options.credentials.legacyPrincipal(refresh.subject)
                : options.credentials.principal(refresh.subject);
        } else if (form.get("grant_type") === "password") {
          principal = await options.credentials.verify(
            form.get("username") ?? "",
            form.get("password") ?? "",
            ctx.client,
          );
        } else {
          throw new OciError(
            "UNSUPPORTED",
            { reason: "grant_type must be password or refresh_token" },
            { status: 400 },
          );
        }
        if (!principal) throw unauthorized();
        sendJson(res, 200, await answer(principal, scopes, true), { "Cache-Control": "no-store" });
        return;
      }
      throw new OciError("UNSUPPORTED", { method: req.method });
    },
  };
}

async function basicPrincipal(
  req: IncomingMessage,
  client: string,
  options: TokenEndpointOptions,
  unauthorized: () => OciError,
): Promise<Principal> {
  const basic = parseBasic(req.headers.authorization);
  if (!basic) return options.anonymousPull ? anonymous : nobody;
  const principal = await options.credentials.verify(basic.name, basic.secret, client);
  if (!principal) throw unauthorized();
  return principal;
}
