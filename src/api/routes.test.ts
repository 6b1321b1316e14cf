import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { matchRoute } from "./routes.ts";

const digest = `sha256:${"a".repeat(64)}`;

describe("route table", () => {
  it("takes the longest name before a route suffix", () => {
    assert.deepEqual(matchRoute("GET", `/v2/a/blobs/b/blobs/${digest}`), {
      kind: "match",
      match: { route: "blob", name: "a/blobs/b", tail: digest },
    });
    assert.deepEqual(matchRoute("GET", "/v2/x/manifests/y/manifests/latest"), {
      kind: "match",
      match: { route: "manifest", name: "x/manifests/y", tail: "latest" },
    });
  });

  it("tells uploads from blobs and decodes escaped digests", () => {
    const start = matchRoute("POST", "/v2/repo/blobs/uploads/");
    assert.equal(start.kind === "match" && start.match.route, "uploadStart");
    const session = matchRoute("PATCH", "/v2/repo/blobs/uploads/abc");
    assert.equal(session.kind === "match" && session.match.tail, "abc");
    const escaped = matchRoute("GET", `/v2/repo/blobs/${digest.replace(":", "%3A")}`);
    assert.equal(escaped.kind === "match" && escaped.match.tail, digest);
  });

  it("reports unsupported methods and unknown paths", () => {
    assert.deepEqual(matchRoute("POST", "/v2/_catalog"), {
      kind: "method-not-allowed",
      allow: ["GET"],
    });
    assert.deepEqual(matchRoute("GET", "/v3/"), { kind: "not-found" });
    assert.deepEqual(matchRoute("GET", "/v2/repo"), { kind: "not-found" });
  });
});
