// What an import names: the source image (`<registry>/<repo>:<tag>` or `@<digest>`, as
// Docker spells references) and the target (`<repo>[:<tag>]` in this registry).
//
//   source   ::= [registry "/"] repository (":" tag | "@" digest)
//   registry ::= host [":" port]     a first component with "." or ":", or "localhost"
//
// Without a registry component the source is Docker Hub, whose single-component names
// live under `library/`, as `docker pull alpine` means `docker.io/library/alpine`.
import { type Digest, parseDigest } from "../oci/digest.ts";
import { OciError } from "../oci/oci-error.ts";
import { parseRepositoryName, parseTag, type RepositoryName, type Tag } from "../oci/reference.ts";

export interface SourceReference {
  /** host[:port] the Distribution API is reached at. */
  registry: string;
  repository: string;
  /** A tag or a digest. */
  reference: { kind: "tag"; tag: string } | { kind: "digest"; digest: Digest };
}

export interface TargetReference {
  repository: RepositoryName;
  /** Absent: the image is imported by digest, untagged. */
  tag?: Tag | undefined;
}

/** Docker Hub's registry API host, for references without a registry. */
const dockerHub = "registry-1.docker.io";

const bad = (what: string, value: string, reason: string) =>
  new OciError(
    "UNSUPPORTED",
    { reason: `${what}: ${reason}`, [what]: value.slice(0, 300) },
    { status: 400 },
  );

export function parseSourceReference(input: string): SourceReference {
  const text = input.trim();
  if (text.length === 0 || text.length > 1024)
    throw bad("source", text, "expected <registry>/<repository>:<tag> or @<digest>");
  let rest = text.replace(/^(?:https?|docker):\/\//, "");
  const slash = rest.indexOf("/");
  const first = slash === -1 ? "" : rest.slice(0, slash);
  let registry = dockerHub;
  if (first !== "" && (first.includes(".") || first.includes(":") || first === "localhost")) {
    registry = first;
    rest = rest.slice(slash + 1);
  }
  if (!/^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/.test(registry)) {
    throw bad("source", text, "the registry must be host[:port]");
  }
  if (registry === "docker.io" || registry === "index.docker.io") registry = dockerHub;
  let reference: SourceReference["reference"];
  let name: string;
  const at = rest.indexOf("@");
  if (at !== -1) {
    name = rest.slice(0, at);
    reference = { kind: "digest", digest: parseDigest(rest.slice(at + 1)) };
  } else {
    const colon = rest.lastIndexOf(":");
    if (colon === -1 || rest.indexOf("/", colon) !== -1) {
      throw bad("source", text, "name a tag (:<tag>) or a digest (@<digest>)");
    }
    name = rest.slice(0, colon);
    reference = { kind: "tag", tag: parseTag(rest.slice(colon + 1)) };
  }
  if (registry === dockerHub && !name.includes("/")) name = `library/${name}`;
  return { registry, repository: parseRepositoryName(name), reference };
}

/** `<repo>[:<tag>]`; without it, the source's repository and tag. */
export function parseTargetReference(
  input: string | undefined,
  source: SourceReference,
): TargetReference {
  if (input === undefined || input.trim() === "") {
    const repository = parseRepositoryName(source.repository);
    return source.reference.kind === "tag"
      ? { repository, tag: parseTag(source.reference.tag) }
      : { repository };
  }
  const text = input.trim();
  const colon = text.lastIndexOf(":");
  if (colon === -1) return { repository: parseRepositoryName(text) };
  return {
    repository: parseRepositoryName(text.slice(0, colon)),
    tag: parseTag(text.slice(colon + 1)),
  };
}

/** `os/arch[/variant]` as `--platform` takes it. */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string | undefined;
}

export function parsePlatform(input: string): Platform {
  const parts = input.trim().split("/");
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9._-]{1,64}$/.test(p))) {
    throw bad("platform", input, "expected os/arch[/variant], e.g. linux/arm64");
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return { os, architecture, variant };
}

export function platformText(platform: Platform): string {
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join("/");
}

export function sourceText(source: SourceReference): string {
  const ref =
    source.reference.kind === "tag" ? `:${source.reference.tag}` : `@${source.reference.digest}`;
  return `${source.registry}/${source.repository}${ref}`;
}

/** Whether a host (as in a URL, IPv6 in brackets) is this machine's loopback. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, "");
  return bare === "localhost" || bare === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare);
}
