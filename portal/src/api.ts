// The page's one way to the server: same-origin requests carrying the session cookie (which
// the page never sees) and, on every state-changing request, the session's CSRF value in
// X-Meridian-CSRF. Failures become ApiError with the OCI error's code and reason, so that
// a refusal (the home replica cannot be deleted, say) is shown in the server's words.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let csrf = "";
let onUnauthorized: () => void = () => {};

/** The session's CSRF value (from /portal/api/session or the login's answer). */
export function setCsrf(value: string | undefined): void {
  csrf = value ?? "";
}

/** What to do when a request finds the session gone (the login form again). */
export function whenUnauthorized(handler: () => void): void {
  onUnauthorized = handler;
}

export interface Answer<T> {
  status: number;
  headers: Headers;
  body: T;
}

export async function call<T = unknown>(
  method: string,
  path: string,
  options: { body?: unknown; accept?: string } = {},
): Promise<Answer<T>> {
  const headers: Record<string, string> = {};
  if (method !== "GET" && method !== "HEAD") headers["X-Meridian-CSRF"] = csrf;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (options.accept) headers.Accept = options.accept;
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = method === "HEAD" ? "" : await response.text();
  if (!response.ok) {
    if (response.status === 401 && !path.startsWith("/portal/api/login")) onUnauthorized();
    throw errorOf(response.status, text);
  }
  let body: unknown = text;
  if (text && (response.headers.get("content-type") ?? "").includes("json")) {
    body = JSON.parse(text);
  }
  return { status: response.status, headers: response.headers, body: body as T };
}

/** GET returning the JSON body. */
export async function getJson<T>(path: string, accept?: string): Promise<T> {
  return (await call<T>("GET", path, accept ? { accept } : {})).body;
}

function errorOf(status: number, text: string): ApiError {
  try {
    const parsed = JSON.parse(text) as {
      errors?: { code?: string; message?: string; detail?: { reason?: string } }[];
    };
    const first = parsed.errors?.[0];
    if (first) {
      const reason = first.detail?.reason;
      return new ApiError(
        status,
        first.code ?? "UNKNOWN",
        reason ? `${first.message ?? first.code}: ${reason}` : (first.message ?? "request failed"),
      );
    }
  } catch {
    // Not an OCI error body: the status says it.
  }
  return new ApiError(status, "UNKNOWN", `HTTP ${status}${text ? `: ${text.slice(0, 200)}` : ""}`);
}

/** The /v2/ path of a repository, each name component escaped. */
export function repositoryPath(name: string): string {
  return `/v2/${name.split("/").map(encodeURIComponent).join("/")}`;
}

/** A message for anything a request threw. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// The shapes of the admin API the pages read (src/control/replication-view.ts and the rest).

export type { ReplicationView as Replication } from "../../src/control/replication-view-type.ts";

export interface RegionChoice {
  name: string;
  displayName: string;
  latitude?: number;
  longitude?: number;
  available: boolean;
  reason?: string;
}

export interface Session {
  authentication: boolean;
  user?: { name: string; admin: boolean };
  csrf?: string;
  region: string;
}

export interface Usage {
  regions: { region: string; storedBytes: number; blobs: number }[];
  transfers: { from: string; to: string; bytes: number }[];
}

export interface ImageRegions {
  repository: string;
  tag: string;
  digest: string;
  regions: {
    region: string;
    state: string;
    digest?: string;
    since?: string;
    missing?: { manifest: boolean; blobs: string[] };
  }[];
}
