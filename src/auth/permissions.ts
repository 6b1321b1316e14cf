// What a principal may do: actions (pull, push, delete) on repositories matched by
// patterns, like ACR's scope maps (`repositories/<pattern>/content/read|write|delete`).
// In a pattern `*` matches within one path component and `**` across components.

export type Action = "pull" | "push" | "delete";
export const allActions: readonly Action[] = ["pull", "push", "delete"];

export interface Grant {
  repositories: string;
  actions: Action[];
}

export interface Principal {
  name: string;
  admin: boolean;
  grants: Grant[];
}

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
