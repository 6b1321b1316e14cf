// What a principal may do: actions (pull, push, delete) on repositories matched by
// patterns, like ACR's scope maps (`repositories/<pattern>/content/read|write|delete`).
// In a pattern `*` matches within one path component and `**` across components.

export type Action = "pull" | "push" | "delete";
export const allActions: readonly Action[] = ["pull", "push", "delete"];

export interface Grant {
  repositories: string;
  actions: Action[];
}

/** Users and tokens are separate namespaces: a token may share a user's name. */
export type PrincipalKind = "user" | "token" | "anonymous";

export interface Principal {
  kind: PrincipalKind;
  name: string;
  /** Unique across kinds (a token's is `token:<name>`): the subject of the JWTs it gets. */
  id: string;
  admin: boolean;
  grants: Grant[];
}

/** Whoever sends no credentials where anonymous pulls are allowed. */
export const anonymousPuller: Principal = {
  kind: "anonymous",
  name: "anonymous",
  id: "anonymous",
  admin: false,
  grants: [{ repositories: "**", actions: ["pull"] }],
};

const compiled = new Map<string, RegExp>();

export function matchesPattern(pattern: string, repository: string): boolean {
  let regex = compiled.get(pattern);
  if (!regex) {
    const source = pattern
      .split(/(\*\*|\*)/)
      .map((part) =>
        part === "**" ? ".*" : part === "*" ? "[^/]*" : part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"),
      )
      .join("");
    regex = new RegExp(`^${source}$`);
    compiled.set(pattern, regex);
  }
  return regex.test(repository);
}

/** The actions of `wanted` the principal may perform on `repository`. */
export function allowedActions(
  principal: Principal,
  repository: string,
  wanted: readonly Action[],
): Action[] {
  if (principal.admin) return [...wanted];
  const granted = new Set<Action>();
  for (const grant of principal.grants) {
    if (matchesPattern(grant.repositories, repository))
      for (const action of grant.actions) granted.add(action);
  }
  return wanted.filter((action) => granted.has(action));
}
