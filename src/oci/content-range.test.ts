import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseReadRange, parseUploadContentRange, resolveReadRange } from "./content-range.ts";
import { OciError } from "./oci-error.ts";

const resolve = (header: string | undefined, size: number) =>
  resolveReadRange(parseReadRange(header), size);

const rangeInvalid = (e: unknown) =>
  e instanceof OciError && e.code === "RANGE_INVALID" && e.status === 416;

describe("upload Content-Range", () => {
  it("parses the forms clients send", () => {
    assert.deepEqual(parseUploadContentRange("0-99"), { start: 0, end: 99 });
    assert.deepEqual(parseUploadContentRange("bytes 100-199/*"), { start: 100, end: 199 });
    assert.deepEqual(parseUploadContentRange("bytes=5-5"), { start: 5, end: 5 });
  });

  it("rejects malformed and inverted ranges", () => {
    for (const header of ["", "abc", "5-4", "-5", "1-", "0-1-2", "99999999999999999-1"]) {
      assert.throws(() => parseUploadContentRange(header), rangeInvalid, header);
    }
  });
});

describe("read Range", () => {
  it("resolves first-last, open-ended and suffix ranges", () => {
    assert.deepEqual(resolve("bytes=0-9", 100), { start: 0, end: 9 });
    assert.deepEqual(resolve("bytes=90-", 100), { start: 90, end: 99 });
    assert.deepEqual(resolve("bytes=-10", 100), { start: 90, end: 99 });
    assert.deepEqual(resolve("bytes=95-200", 100), { start: 95, end: 99 });
  });

  it("serves the whole blob for absent or multi-range headers", () => {
    assert.equal(resolve(undefined, 100), undefined);
    assert.equal(resolve("bytes=0-1,5-6", 100), undefined);
  });

  it("answers 416 for unsatisfiable ranges", () => {
    assert.throws(() => resolve("bytes=100-", 100), rangeInvalid);
    assert.throws(() => resolve("bytes=5-1", 100), rangeInvalid);
    assert.throws(() => resolve("bytes=-0", 100), rangeInvalid);
  });
});
