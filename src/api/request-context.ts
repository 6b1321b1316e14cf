// What a handler receives: the raw request and response, the matched route, the parsed
// query string, and the request's id and logger.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import type { Registry } from "../registry/registry.ts";
import type { RouteMatch } from "./routes.ts";

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  match: RouteMatch;
  query: URLSearchParams;
  requestId: string;
  log: Logger;
  registry: Registry;
  /** Aborted when the client goes away, so streams stop promptly. */
  signal: AbortSignal;
  /** Whether the caller may do an action on another repository (cross-repository mounts). */
  access: AccessCheck;
}

export type AccessCheck = (repository: string, action: "pull" | "push" | "delete") => boolean;

export type Handler = (ctx: RequestContext) => Promise<void>;
