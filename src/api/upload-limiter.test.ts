import assert from "node:assert/strict";
import { IncomingMessage } from "node:http";
import { Socket } from "node:net";
import { describe, it } from "node:test";
import { OciError } from "../oci/oci-error.ts";
import { UploadLimiter } from "./upload-limiter.ts";

function patch(): IncomingMessage {
  const req = new IncomingMessage(new Socket());
  req.method = "PATCH";
  req.headers["content-length"] = "10";
  return req;
}

describe("upload limiter", () => {
  it("refuses a client past its limit with 429 and Retry-After, and frees released slots", () => {
    const limiter = new UploadLimiter(1);
    const release = limiter.admit(patch(), "upload", "a");
    assert.throws(
      () => limiter.admit(patch(), "upload", "a"),
      (e: unknown) => e instanceof OciError && e.status === 429 && e.headers["Retry-After"] === "1",
    );
    limiter.admit(patch(), "upload", "b");
    release();
    release();
    assert.equal(limiter.current("a"), 0, "a double release frees one slot only");
    limiter.admit(patch(), "upload", "a");
  });

  it("keeps each instance's counts to itself", () => {
    const one = new UploadLimiter(1);
    const other = new UploadLimiter(1);
    one.admit(patch(), "upload", "a");
    assert.doesNotThrow(() => other.admit(patch(), "upload", "a"));
  });

  it("counts only requests that stream an upload body", () => {
    const limiter = new UploadLimiter(1);
    const empty = new IncomingMessage(new Socket());
    empty.method = "POST";
    empty.headers["content-length"] = "0";
    limiter.admit(empty, "uploadStart", "a");
    limiter.admit(patch(), "manifest", "a");
    assert.equal(limiter.current("a"), 0);
  });
});
