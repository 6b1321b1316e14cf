// Content digests: the spec's grammar, the registered algorithms Meridian can verify
// (sha256, sha512), and streaming hashers.
//
//   digest    ::= algorithm ":" encoded
//   algorithm ::= component (separator component)*
//   component ::= [a-z0-9]+
//   separator ::= [+._-]
//   encoded   ::= [a-zA-Z0-9=_-]+
import { createHash, type Hash } from "node:crypto";
import { OciError } from "./oci-error.ts";

export type DigestAlgorithm = "sha256" | "sha512";

/** A validated digest string, e.g. `sha256:9f86d0...`. */
export type Digest = string & { readonly __digest: unique symbol };

const grammar = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const encodedLength: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };
const lowerHex = /^[a-f0-9]+$/;

/** Parses a digest from client input; throws DIGEST_INVALID for anything else. */
export function parseDigest(input: string): Digest {
  if (input.length > 256 || !grammar.test(input)) {
    throw new OciError("DIGEST_INVALID", { digest: input.slice(0, 256), reason: "malformed" });
  }
  const colon = input.indexOf(":");
  const algorithm = input.slice(0, colon);
  const encoded = input.slice(colon + 1);
  if (!isSupportedAlgorithm(algorithm)) {
    throw new OciError("DIGEST_INVALID", { digest: input, reason: "unsupported algorithm" });
  }
  if (encoded.length !== encodedLength[algorithm] || !lowerHex.test(encoded)) {
    throw new OciError("DIGEST_INVALID", { digest: input, reason: "bad encoding" });
  }
  return input as Digest;
}

export function isDigest(input: string): boolean {
  try {
    parseDigest(input);
    return true;
  } catch {
    return false;
  }
}

export function isSupportedAlgorithm(name: string): name is DigestAlgorithm {
  return name === "sha256" || name === "sha512";
}

export function digestAlgorithm(digest: Digest): DigestAlgorithm {
  return digest.slice(0, digest.indexOf(":")) as DigestAlgorithm;
}

export function digestHex(digest: Digest): string {
  return digest.slice(digest.indexOf(":") + 1);
}

export function newHasher(algorithm: DigestAlgorithm): Hash {
  return createHash(algorithm);
}

export function digestOf(bytes: Uint8Array, algorithm: DigestAlgorithm = "sha256"): Digest {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest("hex")}` as Digest;
}

export function hasherDigest(algorithm: DigestAlgorithm, hash: Hash): Digest {
  return `${algorithm}:${hash.digest("hex")}` as Digest;
}
