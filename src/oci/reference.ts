// Repository names and manifest references, checked by the spec's grammar:
//
//   name      ::= component ("/" component)*
//   component ::= [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*
//   tag       ::= [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
//   reference ::= tag | digest
//
// The grammar itself excludes "..", empty components and any percent-encoding, so no
// name can escape a storage path.
import { type Digest, parseDigest } from "./digest.ts";
import { OciError } from "./oci-error.ts";

/** A validated repository name. */
export type RepositoryName = string & { readonly __repository: unique symbol };
/** A validated tag. */
export type Tag = string & { readonly __tag: unique symbol };

export type Reference = { kind: "tag"; tag: Tag } | { kind: "digest"; digest: Digest };

const nameGrammar =
  /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const tagGrammar = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
/** Clients cap host + name at 255 characters; the name alone can be no longer. */
export const maxNameLength = 255;

export function parseRepositoryName(input: string): RepositoryName {
  if (input.length === 0 || input.length > maxNameLength || !nameGrammar.test(input)) {
    throw new OciError("NAME_INVALID", { name: input.slice(0, maxNameLength) });
  }
  return input as RepositoryName;
}

export function isTag(input: string): input is Tag {
  return tagGrammar.test(input);
}

export function parseTag(input: string): Tag {
  if (!isTag(input)) throw new OciError("TAG_INVALID", { tag: input.slice(0, 128) });
  return input;
}

/**
 * The manifest a reference names, for a read: a reference that is neither a valid tag nor
 * a valid digest names no manifest, so it is MANIFEST_UNKNOWN (404), as Distribution
 * answers and the OCI conformance tests expect. Writes keep TAG_INVALID / DIGEST_INVALID.
 */
export function lookupReference(input: string): Reference {
  try {
    return parseReference(input);
  } catch (error) {
    throw new OciError("MANIFEST_UNKNOWN", { reference: input.slice(0, 256) }, { cause: error });
  }
}

/** A manifest reference: a digest if it contains ":", a tag otherwise. */
export function parseReference(input: string): Reference {
  if (input.includes(":")) return { kind: "digest", digest: parseDigest(input) };
  return { kind: "tag", tag: parseTag(input) };
}
