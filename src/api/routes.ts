// The OCI Distribution route table: which path shape and method reach which handler.
// Repository names contain slashes, so each pattern anchors its suffix at the end of the
// path and the name is everything before it (validated by the handler's parser).
//
//   /v2/                                      base
//   /v2/_catalog                              catalog
//   /v2/<name>/tags/list                      tags
//   /v2/<name>/manifests/<reference>          manifest
//   /v2/<name>/blobs/uploads/                 upload start
//   /v2/<name>/blobs/uploads/<uuid>           upload session
//   /v2/<name>/blobs/<digest>                 blob
//   /v2/<name>/referrers/<digest>             referrers

export type RouteName =
  | "base"
  | "catalog"
  | "tags"
  | "manifest"
  | "uploadStart"
  | "upload"
  | "blob"
  | "referrers";

export interface RouteMatch {
  route: RouteName;
  /** Raw repository name from the path (not yet validated). */
  name: string;
  /** The last path segment (reference, digest or upload id), percent-decoded. */
  tail: string;
}

interface RoutePattern {
  route: RouteName;
  pattern: RegExp;
  methods: ReadonlySet<string>;
}

const methods = (...names: string[]) => new Set(names);

const patterns: RoutePattern[] = [
  { route: "base", pattern: /^\/v2\/?$/, methods: methods("GET", "HEAD") },
  { route: "catalog", pattern: /^\/v2\/_catalog$/, methods: methods("GET") },
  { route: "tags", pattern: /^\/v2\/(.+)\/tags\/list$/, methods: methods("GET") },
  {
    route: "manifest",
    pattern: /^\/v2\/(.+)\/manifests\/([^/]+)$/,
    methods: methods("GET", "HEAD", "PUT", "DELETE"),
  },
  { route: "uploadStart", pattern: /^\/v2\/(.+)\/blobs\/uploads\/?$/, methods: methods("POST") },
  {
    route: "upload",
    pattern: /^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/,
    methods: methods("GET", "PATCH", "PUT", "DELETE"),
  },
  {
    route: "blob",
    pattern: /^\/v2\/(.+)\/blobs\/([^/]+)$/,
    methods: methods("GET", "HEAD", "DELETE"),
  },
  { route: "referrers", pattern: /^\/v2\/(.+)\/referrers\/([^/]+)$/, methods: methods("GET") },
];

export type RouteResult =
  | { kind: "match"; match: RouteMatch }
  | { kind: "method-not-allowed"; allow: string[] }
  | { kind: "not-found" };

export function matchRoute(method: string, path: string): RouteResult {
  for (const { route, pattern, methods: allowed } of patterns) {
    const found = pattern.exec(path);
    if (!found) continue;
    if (!allowed.has(method)) return { kind: "method-not-allowed", allow: [...allowed] };
    return {
      kind: "match",
      match: { route, name: found[1] ?? "", tail: decodeSegment(found[2] ?? "") },
    };
  }
  return { kind: "not-found" };
}

/** Decodes a percent-encoded segment (clients may send `sha256%3A...`); bad escapes stay raw. */
function decodeSegment(segment: string): string {
  if (!segment.includes("%")) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
