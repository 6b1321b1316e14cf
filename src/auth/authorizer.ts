// Decides, per request, whether the caller may do what the route does: from a bearer
// token (Docker token authentication), Basic credentials, or nobody (anonymous pull when
// enabled). A refusal is the spec's 401 with a `WWW-Authenticate: Bearer` challenge naming
// the realm, service and scope the client should ask the token endpoint for; a valid
// Basic user lacking the permission gets 403 DENIED.
import type { IncomingMessage } from "node:http";
import type { AccessCheck } from "../api/request-context.ts";
import type { RouteMatch } from "../api/routes.ts";
import { OciError } from "../oci/oci-error.ts";
import { type Credentials, parseBasic } from "./credentials.ts";
import { type Action, allowedActions, anonymousPuller, type Principal } from "./permissions.ts";
import {
  csrfHeaderName,
  csrfMatches,
  isSafeMethod,
  type PortalSession,
  type PortalSessions,
  readSessionCookie,
} from "./portal-session.ts";
import type { AccessEntry, TokenService } from "./token-service.ts";

export interface AuthorizerOptions {
  credentials: Credentials;
  tokens: TokenService;
  anonymousPull: boolean;
  /** Absolute token endpoint URL; default from the request's Host header. */
  realm?: string | undefined;
  tls: boolean;
  /** The portal's browser sessions: a session cookie then stands for its user. */
  sessions?: PortalSessions | undefined;
}

interface Caller {
  kind: "bearer" | "basic" | "session" | "anonymous";
  can: AccessCheck;
  admin: boolean;
  catalog: boolean;
}

const allowEveryone: AccessCheck = () => true;

export class Authorizer {
  constructor(private readonly options: AuthorizerOptions) {}

  /** Throws UNAUTHORIZED or DENIED unless the route may be served; returns the caller's access. */
  async authorize(req: IncomingMessage, route: RouteMatch, client: string): Promise<AccessCheck> {
    // No user or token exists (yet, or any more): a loopback registry serves everyone.
    if (!this.options.credentials.configured) return allowEveryone;
    const needed = requirement(req.method ?? "GET", route);
    // Every 401 names the scope, whatever was wrong with the credentials, so that a client
    // holding a bad or expired token can fetch a new one for the right scope.
    const scope =
      needed.kind === "authenticated"
        ? undefined
        : needed.kind === "catalog"
          ? "registry:catalog:*"
          : `repository:${route.name}:${needed.scopeActions}`;
    const caller = await this.identify(req, scope, client);
    if (needed.kind === "authenticated") {
      if (caller) return caller.can;
      throw this.challenge(req, undefined, false);
    }
    if (needed.kind === "catalog") {
      if (caller?.catalog) return caller.can;
      throw this.refuse(req, caller, "registry:catalog:*");
    }
    if (caller?.can(route.name, needed.action)) return caller.can;
    throw this.refuse(req, caller, scope as string);
  }

  /** Throws unless the caller is an admin (admin API). */
  async requireAdmin(req: IncomingMessage, client: string): Promise<void> {
    if (!this.options.credentials.configured) return;
    const caller = await this.identify(req, undefined, client);
    if (caller?.admin) return;
    if (caller && caller.kind !== "anonymous")
      throw new OciError("DENIED", { reason: "admin role required" });
    throw this.challenge(req, undefined, false);
  }

  /**
   * Who sends the request; throws the challenge (for `scope`) for invalid credentials, and
   * TOOMANYREQUESTS for a client whose logins failed too often lately.
   */
  private async identify(
    req: IncomingMessage,
    scope: string | undefined,
    client: string,
  ): Promise<Caller | undefined> {
    const header = req.headers.authorization;
    if (header?.startsWith("Bearer ")) {
      const token = await this.options.tokens.verify(header.slice(7).trim());
      if (!token) throw this.challenge(req, scope, false, "invalid_token");
      return bearerCaller(token.access);
    }
    const basic = parseBasic(header);
    if (basic) {
      const principal = await this.options.credentials.verify(basic.name, basic.secret, client);
      if (!principal) throw this.challenge(req, scope, false);
      return principalCaller("basic", principal);
    }
    if (header) throw this.challenge(req, scope, false);
    const session = await this.sessionPrincipal(req);
    if (session) return principalCaller("session", session);
    if (!this.options.anonymousPull) return undefined;
    return {
      kind: "anonymous",
      admin: false,
      catalog: false,
      can: (repository, action) => allowedActions(anonymousPuller, repository, [action]).length > 0,
    };
  }

  /**
   * The user of the request's portal session cookie; undefined without one (or with one
   * that is forged, expired, or whose user is gone). Throws DENIED for a state-changing
   * request whose X-Meridian-CSRF header does not repeat the session's value.
   */
  async sessionPrincipal(req: IncomingMessage): Promise<Principal | undefined> {
    const found = await this.sessionOf(req);
    if (!found) return undefined;
    if (!isSafeMethod(req.method) && !csrfMatches(found.session, req.headers[csrfHeaderName])) {
      throw new OciError("DENIED", {
        reason: `a request made with the portal's session needs its ${csrfHeaderName} header`,
      });
    }
    return found.principal;
  }

  /**
   * The request's valid portal session and its user as they are now: none when the cookie
   * is forged or expired, the user is gone, or the password changed since the login.
   */
  async sessionOf(
    req: IncomingMessage,
  ): Promise<{ session: PortalSession; principal: Principal } | undefined> {
    const cookie = readSessionCookie(req.headers.cookie);
    if (!cookie || !this.options.sessions) return undefined;
    const session = await this.options.sessions.verify(cookie);
    if (!session) return undefined;
    const { credentials } = this.options;
    const principal = credentials.principal(session.subject);
    if (!principal || credentials.secretStamp(session.subject) !== session.stamp) return undefined;
    return { session, principal };
  }

  private refuse(req: IncomingMessage, caller: Caller | undefined, scope: string): OciError {
    if (caller?.kind === "basic" || caller?.kind === "session")
      return new OciError("DENIED", { scope });
    return this.challenge(req, scope, caller?.kind === "bearer");
  }

  private challenge(
    req: IncomingMessage,
    scope: string | undefined,
    insufficient: boolean,
    error?: string,
  ): OciError {
    // A Host header is client input: only a plain host[:port] may shape the realm.
    const given = req.headers.host ?? "";
    const plainHost = /^[A-Za-z0-9.-]+(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$/.test(given);
    const realm =
      this.options.realm ??
      `${this.options.tls ? "https" : "http"}://${plainHost ? given : "localhost"}/token`;
    const parts = [`realm="${realm}"`, `service="${this.options.tokens.service}"`];
    if (scope) parts.push(`scope="${scope}"`);
    if (insufficient) parts.push('error="insufficient_scope"');
    else if (error) parts.push(`error="${error}"`);
    return new OciError("UNAUTHORIZED", scope ? { scope } : {}, {
      headers: { "WWW-Authenticate": `Bearer ${parts.join(",")}` },
    });
  }
}

function principalCaller(kind: "basic" | "session", principal: Principal): Caller {
  return {
    kind,
    admin: principal.admin,
    catalog: principal.admin,
    can: (repository, action) => allowedActions(principal, repository, [action]).length > 0,
  };
}

function bearerCaller(access: AccessEntry[]): Caller {
  return {
    kind: "bearer",
    admin: false,
    catalog: access.some((entry) => entry.type === "registry" && entry.name === "catalog"),
    can: (repository, action) =>
      access.some(
        (entry) =>
          entry.type === "repository" &&
          entry.name === repository &&
          entry.actions.includes(action),
      ),
  };
}

type Requirement =
  | { kind: "authenticated" }
  | { kind: "catalog" }
  | { kind: "repository"; action: Action; scopeActions: string };

/** What a route and method need. Uploads ask for pull,push as Docker clients do. */
function requirement(method: string, route: RouteMatch): Requirement {
  switch (route.route) {
    case "base":
      return { kind: "authenticated" };
    case "catalog":
      return { kind: "catalog" };
    case "uploadStart":
    case "upload":
      return { kind: "repository", action: "push", scopeActions: "pull,push" };
    default:
      if (method === "DELETE")
        return { kind: "repository", action: "delete", scopeActions: "delete" };
      if (method === "PUT")
        return { kind: "repository", action: "push", scopeActions: "pull,push" };
      return { kind: "repository", action: "pull", scopeActions: "pull" };
  }
}
