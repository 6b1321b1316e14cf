// Which stored manifests of one repository a retention policy expires: the untagged ones
// older than the cutoff, except what a kept manifest needs. Kept are the tagged manifests
// and the untagged ones still young; a kept index keeps its children, a kept referrer
// (signature, SBOM) keeps its subject, and a referrer goes with its subject (kept while
// its subject is kept, expired with it). Pure: the collector re-checks each delete in the
// metadata store's transaction, so a tag or a parent written since still wins.
import type { ManifestNode, Stamp } from "../metadata/metadata-store.ts";
import type { Digest } from "../oci/digest.ts";

export interface RetentionPlan {
  /** Expired manifests, parents before their children (an index before what it lists). */
  expired: ManifestNode[];
  kept: number;
}

export function planRetention(nodes: readonly ManifestNode[], cutoff: Stamp): RetentionPlan {
  const byDigest = new Map(nodes.map((node) => [node.digest, node]));
  const referrers = new Map<Digest, ManifestNode[]>();
  for (const node of nodes) {
    if (node.subject === undefined || !byDigest.has(node.subject)) continue;
    const list = referrers.get(node.subject) ?? [];
    list.push(node);
    referrers.set(node.subject, list);
  }
  // A referrer whose subject is stored here lives and dies with it, unless it is tagged.
  const followsSubject = (node: ManifestNode) =>
    node.subject !== undefined && byDigest.has(node.subject);
  const kept = new Set<Digest>();
  const queue: ManifestNode[] = [];
  const keep = (node: ManifestNode | undefined) => {
    if (!node || kept.has(node.digest)) return;
    kept.add(node.digest);
    queue.push(node);
  };
  for (const node of nodes) {
    if (node.tagged || (!followsSubject(node) && node.stamp >= cutoff)) keep(node);
  }
  while (queue.length > 0) {
    const node = queue.pop() as ManifestNode;
    for (const child of node.children) keep(byDigest.get(child));
    if (node.subject !== undefined) keep(byDigest.get(node.subject));
    for (const referrer of referrers.get(node.digest) ?? []) keep(referrer);
  }
  const expired = nodes.filter((node) => !kept.has(node.digest));
  return { expired: parentsFirst(expired, byDigest), kept: kept.size };
}

/** Orders manifests so that every index comes before the manifests it lists. */
function parentsFirst(
  nodes: readonly ManifestNode[],
  byDigest: ReadonlyMap<Digest, ManifestNode>,
): ManifestNode[] {
  const depth = new Map<Digest, number>();
  // The longest chain of parents above a manifest; indexes nest a few levels at most.
  const parents = new Map<Digest, Digest[]>();
  for (const node of byDigest.values()) {
    for (const child of node.children)
      parents.set(child, [...(parents.get(child) ?? []), node.digest]);
  }
  const depthOf = (digest: Digest, seen: Set<Digest>): number => {
    const known = depth.get(digest);
    if (known !== undefined) return known;
    if (seen.has(digest)) return 0;
    seen.add(digest);
    const above = (parents.get(digest) ?? []).map((parent) => depthOf(parent, seen) + 1);
    const value = Math.max(0, ...above);
    depth.set(digest, value);
    return value;
  };
  return [...nodes].sort(
    (a, b) =>
      depthOf(a.digest, new Set()) - depthOf(b.digest, new Set()) || (a.digest < b.digest ? -1 : 1),
  );
}
