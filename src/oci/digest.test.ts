import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { digestOf, parseDigest } from "./digest.ts";
import { OciError } from "./oci-error.ts";

const invalid = (input: string) =>
  assert.throws(
    () => parseDigest(input),
    (e: unknown) => e instanceof OciError && e.code === "DIGEST_INVALID",
  );

describe("digest", () => {
  it("accepts sha256 and sha512 digests", () => {
    const sha256 = digestOf(Buffer.from("x"));
    const sha512 = digestOf(Buffer.from("x"), "sha512");
    assert.equal(parseDigest(sha256), sha256);
    assert.equal(parseDigest(sha512), sha512);
  });

  it("rejects malformed, unknown-algorithm and wrongly encoded digests", () => {
    for (const input of [
      "",
      "sha256",
      "sha256:",
      ":abc",
      `sha256:${"A".repeat(64)}`,
      `sha256:${"a".repeat(63)}`,
      `sha512:${"a".repeat(64)}`,
      `md5:${"a".repeat(32)}`,
      `sha256:${"a".repeat(64)}/../x`,
      `SHA256:${"a".repeat(64)}`,
    ]) {
      invalid(input);
    }
  });
});
