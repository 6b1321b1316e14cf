// `meridian apply -f <file>`: the plan that makes the registry match a desired-state file
// (replicas, users, tokens, webhooks), computed from what the admin API shows now. Pure:
// the CLI fetches the current state, prints or runs the plan. A section the file does not
// have is left alone (a file without `auth.users` deletes no user); a section it has,
// even empty, is the whole truth for its kind. Secrets are never in the file: users and
// tokens carry scrypt hashes (compared through their fingerprints), webhook secrets come
// from environment variables named in the file and are set only when a webhook is made.
import { fingerprintOf } from "./admin-api.ts";

export interface Grant {
  repositories: string;
  actions: string[];
}

export interface DesiredState {
  replicas?: { region: string; globalEndpointRouting: boolean; home: boolean }[];
  users?: { name: string; passwordHash: string; admin: boolean; permissions: Grant[] }[];
  tokens?: { name: string; secretHash: string; permissions: Grant[] }[];
  webhooks?: DesiredWebhook[];
}

export interface DesiredWebhook {
  name: string;
  uri: string;
  actions: string[];
  location?: string | undefined;
  scope?: string | undefined;
  status: "enabled" | "disabled";
  /** The environment variable holding the signing secret (used when the webhook is made). */
  secret?: string | undefined;
}

export interface CurrentState {
  replicas: { name: string; home: boolean; regionEndpointEnabled: boolean }[];
  users: { name: string; admin: boolean; permissions: Grant[]; fingerprint?: string }[];
  tokens: { name: string; permissions: Grant[]; fingerprint?: string }[];
  webhooks: {
    name: string;
    uri: string;
    actions: string[];
    location: string | null;
    scope: string | null;
    status: string;
  }[];
}

export interface PlannedChange {
  verb: "create" | "update" | "delete";
  kind: "replica" | "user" | "token" | "webhook";
  name: string;
  /** What differs, for the printed plan. */
  detail?: string;
  /** The admin API request that makes the change (path under /_meridian/admin/). */
  request: { method: string; path: string; body?: unknown };
}

/**
 * Users first, admins before the others: on a registry with no account yet the first
 * account (a user or a token) turns authentication on, and the requests after it must be
 * able to log in as the admin the file makes. Deletions of users come last, so that the
 * account applying the file is not removed halfway.
 */
export function planChanges(current: CurrentState, desired: DesiredState): PlannedChange[] {
  const users = planUsers(current, desired);
  return [
    ...users.filter((c) => c.verb !== "delete"),
    ...planReplicas(current, desired),
    ...planTokens(current, desired),
    ...planWebhooks(current, desired),
    ...users.filter((c) => c.verb === "delete"),
  ];
}

function planReplicas(current: CurrentState, desired: DesiredState): PlannedChange[] {
  if (!desired.replicas) return [];
  const changes: PlannedChange[] = [];
  for (const want of desired.replicas) {
    const have = current.replicas.find((r) => r.name === want.region);
    const path = `replications/${want.region}`;
    if (!have) {
      changes.push({
        verb: "create",
        kind: "replica",
        name: want.region,
        request: {
          method: "POST",
          path: "replications",
          body: { location: want.region, regionEndpointEnabled: want.globalEndpointRouting },
        },
      });
    } else if (have.regionEndpointEnabled !== want.globalEndpointRouting) {
      changes.push({
        verb: "update",
        kind: "replica",
        name: want.region,
        detail: `regionEndpointEnabled ${have.regionEndpointEnabled} -> ${want.globalEndpointRouting}`,
        request: {
          method: "PATCH",
          path,
          body: { regionEndpointEnabled: want.globalEndpointRouting },
        },
      });
    }
  }
  for (const have of current.replicas) {
    // The home replica goes only with the registry: a file without it changes nothing there.
    if (have.home || desired.replicas.some((r) => r.region === have.name)) continue;
    changes.push({
      verb: "delete",
      kind: "replica",
      name: have.name,
      request: { method: "DELETE", path: `replications/${have.name}` },
    });
  }
  return changes;
}

function planUsers(current: CurrentState, desired: DesiredState): PlannedChange[] {
  if (!desired.users) return [];
  const changes: PlannedChange[] = [];
  const admins = [...desired.users].sort((a, b) => Number(b.admin) - Number(a.admin));
  for (const want of admins) {
    const have = current.users.find((u) => u.name === want.name);
    const differs = have
      ? [
          ...(have.fingerprint !== fingerprintOf(want.passwordHash) ? ["password"] : []),
          ...(have.admin !== want.admin ? ["admin"] : []),
          ...(!sameGrants(have.permissions, want.permissions) ? ["permissions"] : []),
        ]
      : [];
    if (have && differs.length === 0) continue;
    changes.push({
      verb: have ? "update" : "create",
      kind: "user",
      name: want.name,
      ...(have ? { detail: differs.join(", ") } : {}),
      request: {
        method: "PUT",
        path: `users/${encodeURIComponent(want.name)}`,
        body: { passwordHash: want.passwordHash, admin: want.admin, permissions: want.permissions },
      },
    });
  }
  for (const have of current.users) {
    if (desired.users.some((u) => u.name === have.name)) continue;
    changes.push(removal("user", have.name, `users/${encodeURIComponent(have.name)}`));
  }
  return changes;
}

function planTokens(current: CurrentState, desired: DesiredState): PlannedChange[] {
  if (!desired.tokens) return [];
  const changes: PlannedChange[] = [];
  for (const want of desired.tokens) {
    const have = current.tokens.find((t) => t.name === want.name);
    const differs = have
      ? [
          ...(have.fingerprint !== fingerprintOf(want.secretHash) ? ["secret"] : []),
          ...(!sameGrants(have.permissions, want.permissions) ? ["permissions"] : []),
        ]
      : [];
    if (have && differs.length === 0) continue;
    changes.push({
      verb: have ? "update" : "create",
      kind: "token",
      name: want.name,
      ...(have ? { detail: differs.join(", ") } : {}),
      request: {
        method: "PUT",
        path: `tokens/${encodeURIComponent(want.name)}`,
        body: { secretHash: want.secretHash, permissions: want.permissions },
      },
    });
  }
  for (const have of current.tokens) {
    if (desired.tokens.some((t) => t.name === have.name)) continue;
    changes.push(removal("token", have.name, `tokens/${encodeURIComponent(have.name)}`));
  }
  return changes;
}

function planWebhooks(current: CurrentState, desired: DesiredState): PlannedChange[] {
  if (!desired.webhooks) return [];
  const changes: PlannedChange[] = [];
  for (const want of desired.webhooks) {
    const have = current.webhooks.find((w) => w.name === want.name);
    const fields = {
      uri: want.uri,
      actions: want.actions,
      location: want.location ?? null,
      scope: want.scope ?? null,
      status: want.status,
    };
    if (!have) {
      const { location, scope, ...rest } = fields;
      changes.push({
        verb: "create",
        kind: "webhook",
        name: want.name,
        request: {
          method: "POST",
          path: "webhooks",
          body: {
            name: want.name,
            ...rest,
            ...(location ? { location } : {}),
            ...(scope ? { scope } : {}),
            ...(want.secret ? { secret: want.secret } : {}),
          },
        },
      });
      continue;
    }
    const differs = (Object.keys(fields) as (keyof typeof fields)[]).filter(
      (key) => JSON.stringify(have[key]) !== JSON.stringify(fields[key]),
    );
    if (differs.length === 0) continue;
    changes.push({
      verb: "update",
      kind: "webhook",
      name: want.name,
      detail: differs.join(", "),
      request: {
        method: "PATCH",
        path: `webhooks/${encodeURIComponent(want.name)}`,
        body: Object.fromEntries(differs.map((key) => [key, fields[key]])),
      },
    });
  }
  for (const have of current.webhooks) {
    if (desired.webhooks.some((w) => w.name === have.name)) continue;
    changes.push(removal("webhook", have.name, `webhooks/${encodeURIComponent(have.name)}`));
  }
  return changes;
}

function removal(kind: PlannedChange["kind"], name: string, path: string): PlannedChange {
  return { verb: "delete", kind, name, request: { method: "DELETE", path } };
}

/** The same grants, whatever their order and the order of their actions. */
function sameGrants(a: Grant[], b: Grant[]): boolean {
  const key = (grants: Grant[]) =>
    grants
      .map((g) => `${g.repositories}:${[...g.actions].sort().join(",")}`)
      .sort()
      .join(";");
  return key(a) === key(b);
}
