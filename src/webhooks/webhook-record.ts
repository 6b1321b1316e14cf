// What a webhook is: the control record of kind "webhook" (its JSON shape and checks), the
// view the admin API shows of it (never the secret), and which events it wants (actions,
// ACR-style scope patterns, status). Where it fires from is decided by the event source.
import { z } from "zod";

export const webhookKind = "webhook";

export const webhookActions = ["push", "delete"] as const;
export type WebhookAction = (typeof webhookActions)[number];

const headerName = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$/;

const headers = z
  .record(
    z.string().regex(headerName, "a header name has token characters only"),
    z
      .string()
      .max(4096)
      .refine((v) => !/[\r\n\0]/.test(v), "a header value has no line breaks"),
  )
  .refine((h) => Object.keys(h).length <= 32, "at most 32 headers");

/** The stored record (the value of the control record), the secret included. */
export const webhookValue = z
  .object({
    uri: z.string().min(1).max(2048),
    actions: z.array(z.enum(webhookActions)).min(1),
    /** The region whose replica delivers, once the event is true there; absent: the origin. */
    location: z.string().optional(),
    /** ACR scope: `repo:tag` with `*` wildcards; `repo` alone means `repo:latest`; absent: all. */
    scope: z.string().max(512).optional(),
    headers: headers.default({}),
    status: z.enum(["enabled", "disabled"]).default("enabled"),
    secret: z.string().max(512).optional(),
  })
  .strict();

export type WebhookValue = z.infer<typeof webhookValue>;

export interface Webhook extends WebhookValue {
  name: string;
}

/** The body of a create: the record plus its name. */
export const createBody = webhookValue.extend({
  name: z.string().regex(/^[A-Za-z0-9._@-]{1,64}$/, "1-64 letters, digits and ._@- only"),
});

/** The body of an update: any field; null clears location, scope or secret. */
export const updateBody = z
  .object({
    uri: z.string().min(1).max(2048).optional(),
    actions: z.array(z.enum(webhookActions)).min(1).optional(),
    location: z.string().nullable().optional(),
    scope: z.string().max(512).nullable().optional(),
    headers: headers.optional(),
    status: z.enum(["enabled", "disabled"]).optional(),
    secret: z.string().max(512).nullable().optional(),
  })
  .strict();

export type WebhookUpdate = z.infer<typeof updateBody>;

export function applyUpdate(current: WebhookValue, update: WebhookUpdate): WebhookValue {
  const next: WebhookValue = { ...current };
  if (update.uri !== undefined) next.uri = update.uri;
  if (update.actions !== undefined) next.actions = update.actions;
  if (update.headers !== undefined) next.headers = update.headers;
  if (update.status !== undefined) next.status = update.status;
  for (const key of ["location", "scope", "secret"] as const) {
    const value = update[key];
    if (value === null) delete next[key];
    else if (value !== undefined) next[key] = value;
  }
  return next;
}

/** What every read of the admin API shows: the secret only as whether there is one. */
export interface WebhookView {
  name: string;
  uri: string;
  actions: WebhookAction[];
  location: string | null;
  scope: string | null;
  /** Names of the custom headers (their values may be credentials). */
  headers: string[];
  status: "enabled" | "disabled";
  secretSet: boolean;
}

export function viewOf(webhook: Webhook): WebhookView {
  return {
    name: webhook.name,
    uri: webhook.uri,
    actions: webhook.actions,
    location: webhook.location ?? null,
    scope: webhook.scope ?? null,
    headers: Object.keys(webhook.headers).sort(),
    status: webhook.status,
    secretSet: webhook.secret !== undefined && webhook.secret !== "",
  };
}

/** Parses a stored record; undefined for a tombstone or a value this version cannot read. */
export function parseWebhook(name: string, value: string | null): Webhook | undefined {
  if (value === null) return undefined;
  try {
    const parsed = webhookValue.safeParse(JSON.parse(value));
    return parsed.success ? { name, ...parsed.data } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether an event on `repository` (with `tag`, or none for a digest-only push or a
 * manifest delete) is in the scope, as ACR reads it: `foo:bar` one tag, `foo:*` every tag
 * (and the untagged events) of foo, `foo` alone is `foo:latest`, `*` anywhere matches any
 * run of characters, no scope matches everything.
 */
export function inScope(scope: string | undefined, repository: string, tag: string | undefined) {
  if (scope === undefined || scope === "") return true;
  const colon = scope.lastIndexOf(":");
  const repoPattern = colon < 0 ? scope : scope.slice(0, colon);
  const tagPattern = colon < 0 ? "latest" : scope.slice(colon + 1);
  if (!wildcard(repoPattern).test(repository)) return false;
  if (tag === undefined) return tagPattern.includes("*");
  return wildcard(tagPattern).test(tag);
}

function wildcard(pattern: string): RegExp {
  const escaped = pattern.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\/]/g, "\\$&"));
  return new RegExp(`^${escaped.join(".*")}$`);
}

/** Whether the webhook wants the event at all (where it is delivered from is not asked). */
export function wants(
  webhook: Webhook,
  action: WebhookAction,
  repository: string,
  tag: string | undefined,
): boolean {
  return (
    webhook.status === "enabled" &&
    webhook.actions.includes(action) &&
    inScope(webhook.scope, repository, tag)
  );
}
