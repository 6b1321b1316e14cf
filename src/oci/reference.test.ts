import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OciError } from "./oci-error.ts";
import { lookupReference, parseReference, parseRepositoryName } from "./reference.ts";

describe("repository names", () => {
  it("accepts the spec's grammar", () => {
    for (const name of ["a", "library/ubuntu", "a-b__c.d/e--f/g_h", "x0/1y/2"]) {
      assert.equal(parseRepositoryName(name), name);
    }
  });

  it("rejects traversal, empty components, upper case and over-long names", () => {
    for (const name of [
      "",
      "..",
      "a/../b",
      "a//b",
      "/a",
      "a/",
      "A",
      "a_",
      "-a",
      "a/.b",
      "a%2fb",
      "é",
      "a".repeat(256),
    ]) {
      assert.throws(
        () => parseRepositoryName(name),
        (e: unknown) => e instanceof OciError && e.code === "NAME_INVALID",
        name,
      );
    }
  });
});

describe("manifest references", () => {
  it("tells tags from digests", () => {
    assert.deepEqual(parseReference("v1.0_rc-1"), { kind: "tag", tag: "v1.0_rc-1" });
    const digest = `sha256:${"a".repeat(64)}`;
    assert.deepEqual(parseReference(digest), { kind: "digest", digest });
  });

  it("rejects bad tags and bad digests with the right codes", () => {
    assert.throws(
      () => parseReference(".hidden"),
      (e: unknown) => e instanceof OciError && e.code === "TAG_INVALID",
    );
    assert.throws(
      () => parseReference("t".repeat(129)),
      (e: unknown) => e instanceof OciError && e.code === "TAG_INVALID",
    );
    assert.throws(
      () => parseReference("sha256:zz"),
      (e: unknown) => e instanceof OciError && e.code === "DIGEST_INVALID",
    );
  });

  it("reads a reference that is neither tag nor digest as naming no manifest", () => {
    for (const input of [".hidden", "sha256:zz", `md5:${"a".repeat(32)}`]) {
      assert.throws(
        () => lookupReference(input),
        (e: unknown) => e instanceof OciError && e.code === "MANIFEST_UNKNOWN" && e.status === 404,
        input,
      );
    }
    assert.deepEqual(lookupReference("v1"), { kind: "tag", tag: "v1" });
  });
});
