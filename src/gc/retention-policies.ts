// Retention policies, like ACR's: untagged manifests older than N days are deleted from the
// repositories a pattern matches (`*` within one path component, `**` across). They are
// control-plane records of kind `retention`, so that a policy set in any region holds in
// every region; a record's name is derived from its pattern (patterns hold characters
// record names may not), and its value carries the pattern.
import { createHash } from "node:crypto";
import { matchesPattern } from "../auth/permissions.ts";
import type { ControlRecords } from "../registry/control-records.ts";

export const retentionKind = "retention";

export interface RetentionPolicy {
  /** Repository pattern, e.g. `team/**`. */
  repositories: string;
  /** Untagged manifests older than this many days are deleted (fractions allowed). */
  untaggedDays: number;
}

export class RetentionPolicies {
  constructor(private readonly control: ControlRecords) {}

  async list(): Promise<RetentionPolicy[]> {
    const policies: RetentionPolicy[] = [];
    for (const record of await this.control.list(retentionKind)) {
      const policy = parsePolicy(record.value);
      if (policy) policies.push(policy);
    }
    return policies.sort((a, b) => (a.repositories < b.repositories ? -1 : 1));
  }

  async set(policy: RetentionPolicy): Promise<void> {
    await this.control.put(retentionKind, policyName(policy.repositories), policy);
  }

  /** Removes the policy of exactly this pattern; false when there was none. */
  disable(repositories: string): Promise<boolean> {
    return this.control.delete(retentionKind, policyName(repositories));
  }
}

/**
 * The policy that governs a repository: of the patterns that match it, the longest (the
 * most specific), so that `team/legacy/**` can override `team/**`.
 */
export function policyFor(
  policies: readonly RetentionPolicy[],
  repository: string,
): RetentionPolicy | undefined {
  let chosen: RetentionPolicy | undefined;
  for (const policy of policies) {
    if (!matchesPattern(policy.repositories, repository)) continue;
    if (!chosen || policy.repositories.length > chosen.repositories.length) chosen = policy;
  }
  return chosen;
}

/** A control-record name for a pattern: letters and digits only, the same everywhere. */
export function policyName(repositories: string): string {
  return createHash("sha256").update(repositories).digest("hex").slice(0, 40);
}

function parsePolicy(value: string | null): RetentionPolicy | undefined {
  if (value === null) return undefined;
  try {
    const parsed = JSON.parse(value) as Partial<RetentionPolicy>;
    if (typeof parsed.repositories !== "string" || typeof parsed.untaggedDays !== "number") {
      return undefined;
    }
    return { repositories: parsed.repositories, untaggedDays: parsed.untaggedDays };
  } catch {
    return undefined;
  }
}
