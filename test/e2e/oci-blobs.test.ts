// End-to-end: the blob and upload half of the Distribution API against a real process.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type MeridianProcess, startMeridian } from "../support/meridian-process.ts";
import { blobOf, randomBlob } from "../support/oci-fixtures.ts";
import { expectError, pushBlob } from "../support/registry-http.ts";

describe("blobs and uploads", () => {
  let server: MeridianProcess;
  let base: string;
  before(async () => {
    server = await startMeridian();
    base = server.url;
  });
  after(() => server.dispose());

  it("answers the base endpoint with the API version header", async () => {
    const response = await fetch(`${base}/v2/`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("docker-distribution-api-version"), "registry/2.0");
  });

  it("takes a monolithic upload and serves it with digest, length, ETag and ranges", async () => {
    const blob = randomBlob(100_000);
    await pushBlob(base, "mono/app", blob);
    const head = await fetch(`${base}/v2/mono/app/blobs/${blob.digest}`, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("content-length"), "100000");
    assert.equal(head.headers.get("docker-content-digest"), blob.digest);
    assert.equal(head.headers.get("etag"), `"${blob.digest}"`);
    const get = await fetch(`${base}/v2/mono/app/blobs/${blob.digest}`);
    assert.deepEqual(Buffer.from(await get.arrayBuffer()), blob.bytes);
    const part = await fetch(`${base}/v2/mono/app/blobs/${blob.digest}`, {
      headers: { Range: "bytes=10-19" },
    });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get("content-range"), "bytes 10-19/100000");
    assert.deepEqual(Buffer.from(await part.arrayBuffer()), blob.bytes.subarray(10, 20));
    const beyond = await fetch(`${base}/v2/mono/app/blobs/${blob.digest}`, {
      headers: { Range: "bytes=100000-" },
    });
    await expectError(beyond, 416, "RANGE_INVALID");
  });

  it("rejects content that does not match its digest and stores nothing", async () => {
    const claimed = randomBlob(10);
    const response = await fetch(`${base}/v2/bad/app/blobs/uploads/?digest=${claimed.digest}`, {
      method: "POST",
      body: Buffer.from("something else"),
    });
    await expectError(response, 400, "DIGEST_INVALID");
    const head = await fetch(`${base}/v2/bad/app/blobs/${claimed.digest}`, { method: "HEAD" });
    assert.equal(head.status, 404);
  });

  it("completes a POST then a single PUT with the body", async () => {
    const blob = randomBlob(5000);
    const start = await fetch(`${base}/v2/single/blobs/uploads/`, { method: "POST" });
    assert.equal(start.status, 202);
    const location = start.headers.get("location") ?? "";
    assert.match(location, /^\/v2\/single\/blobs\/uploads\/[0-9a-f-]{36}$/);
    assert.equal(start.headers.get("range"), "0-0");
    const put = await fetch(`${base}${location}?digest=${blob.digest}`, {
      method: "PUT",
      headers: { "Content-Type": "application/octet-stream" },
      body: blob.bytes,
    });
    assert.equal(put.status, 201, await put.text());
    assert.equal(put.headers.get("location"), `/v2/single/blobs/${blob.digest}`);
    assert.equal(put.headers.get("docker-content-digest"), blob.digest);
  });

  it("assembles ordered chunks, refuses an out-of-order chunk with 416 and the current Range", async () => {
    const blob = randomBlob(30_000);
    const start = await fetch(`${base}/v2/chunked/blobs/uploads/`, { method: "POST" });
    let location = start.headers.get("location") ?? "";
    const chunk = async (from: number, to: number) =>
      fetch(`${base}${location}`, {
        method: "PATCH",
        headers: {
          "Content-Type": "application/octet-stream",
          "Content-Range": `${from}-${to - 1}`,
        },
        body: blob.bytes.subarray(from, to),
      });
    const first = await chunk(0, 10_000);
    assert.equal(first.status, 202);
    assert.equal(first.headers.get("range"), "0-9999");
    location = first.headers.get("location") ?? location;
    const skipped = await chunk(20_000, 30_000);
    assert.equal(skipped.status, 416);
    assert.equal(skipped.headers.get("range"), "0-9999");
    await expectError(skipped, 416, "RANGE_INVALID");
    const status = await fetch(`${base}${location}`);
    assert.equal(status.status, 204);
    assert.equal(status.headers.get("range"), "0-9999");
    assert.equal((await chunk(10_000, 20_000)).status, 202);
    assert.equal((await chunk(20_000, 30_000)).status, 202);
    const done = await fetch(`${base}${location}?digest=${blob.digest}`, { method: "PUT" });
    assert.equal(done.status, 201, await done.text());
    const get = await fetch(`${base}/v2/chunked/blobs/${blob.digest}`);
    assert.deepEqual(Buffer.from(await get.arrayBuffer()), blob.bytes);
  });

  it("appends a streamed PATCH without Content-Range", async () => {
    const blob = randomBlob(12_345);
    const start = await fetch(`${base}/v2/streamed/blobs/uploads/`, { method: "POST" });
    const location = start.headers.get("location") ?? "";
    const patch = await fetch(`${base}${location}`, { method: "PATCH", body: blob.bytes });
    assert.equal(patch.status, 202);
    assert.equal(patch.headers.get("range"), "0-12344");
    const done = await fetch(`${base}${location}?digest=${blob.digest}`, { method: "PUT" });
    assert.equal(done.status, 201);
  });

  it("cancels an upload, after which it is unknown", async () => {
    const start = await fetch(`${base}/v2/cancel/blobs/uploads/`, { method: "POST" });
    const location = start.headers.get("location") ?? "";
    assert.equal((await fetch(`${base}${location}`, { method: "DELETE" })).status, 204);
    await expectError(await fetch(`${base}${location}`), 404, "BLOB_UPLOAD_UNKNOWN");
    await expectError(
      await fetch(`${base}${location}`, { method: "PATCH", body: "x" }),
      404,
      "BLOB_UPLOAD_UNKNOWN",
    );
  });

  it("does not let one repository use another repository's upload session", async () => {
    const start = await fetch(`${base}/v2/owner/blobs/uploads/`, { method: "POST" });
    const id = (start.headers.get("location") ?? "").split("/").pop();
    await expectError(
      await fetch(`${base}/v2/intruder/blobs/uploads/${id}`),
      404,
      "BLOB_UPLOAD_UNKNOWN",
    );
  });

  it("discards a chunked upload whose final digest does not match", async () => {
    const start = await fetch(`${base}/v2/mismatch/blobs/uploads/`, { method: "POST" });
    const location = start.headers.get("location") ?? "";
    await fetch(`${base}${location}`, { method: "PATCH", body: "abc" });
    const wrong = blobOf(Buffer.from("abd"));
    await expectError(
      await fetch(`${base}${location}?digest=${wrong.digest}`, { method: "PUT" }),
      400,
      "DIGEST_INVALID",
    );
    assert.equal(
      (await fetch(`${base}/v2/mismatch/blobs/${wrong.digest}`, { method: "HEAD" })).status,
      404,
    );
  });

  it("verifies sha512 digests", async () => {
    const blob = blobOf(Buffer.from("sha512 content"), "sha512");
    await pushBlob(base, "sha512/app", blob);
    const head = await fetch(`${base}/v2/sha512/app/blobs/${blob.digest}`, { method: "HEAD" });
    assert.equal(head.headers.get("docker-content-digest"), blob.digest);
  });

  it("mounts a blob across repositories, or falls back to an upload session", async () => {
    const blob = randomBlob(2048);
    await pushBlob(base, "source/app", blob);
    const mounted = await fetch(
      `${base}/v2/target/app/blobs/uploads/?mount=${blob.digest}&from=source/app`,
      {
        method: "POST",
      },
    );
    assert.equal(mounted.status, 201);
    assert.equal(mounted.headers.get("location"), `/v2/target/app/blobs/${blob.digest}`);
    const get = await fetch(`${base}/v2/target/app/blobs/${blob.digest}`);
    assert.deepEqual(Buffer.from(await get.arrayBuffer()), blob.bytes);
    const missing = randomBlob(10);
    const fallback = await fetch(
      `${base}/v2/target/app/blobs/uploads/?mount=${missing.digest}&from=source/app`,
      {
        method: "POST",
      },
    );
    assert.equal(fallback.status, 202);
    assert.match(fallback.headers.get("location") ?? "", /\/v2\/target\/app\/blobs\/uploads\//);
  });

  it("deletes a blob link; other repositories keep the blob", async () => {
    const blob = randomBlob(500);
    await pushBlob(base, "del/one", blob);
    await pushBlob(base, "del/two", blob);
    const deleted = await fetch(`${base}/v2/del/one/blobs/${blob.digest}`, { method: "DELETE" });
    assert.equal(deleted.status, 202);
    await expectError(await fetch(`${base}/v2/del/one/blobs/${blob.digest}`), 404, "BLOB_UNKNOWN");
    assert.equal((await fetch(`${base}/v2/del/two/blobs/${blob.digest}`)).status, 200);
  });

  it("answers bad names, digests and methods with the spec's codes", async () => {
    const digest = randomBlob(1).digest;
    await expectError(await fetch(`${base}/v2/Upper/blobs/${digest}`), 400, "NAME_INVALID");
    await expectError(await fetch(`${base}/v2/a/-b/blobs/${digest}`), 400, "NAME_INVALID");
    await expectError(await fetch(`${base}/v2/a/blobs/sha256:nothex`), 400, "DIGEST_INVALID");
    await expectError(await fetch(`${base}/v2/a/blobs/md5:abc`), 400, "DIGEST_INVALID");
    await expectError(await fetch(`${base}/v2/a/blobs/${digest}`), 404, "BLOB_UNKNOWN");
    await expectError(
      await fetch(`${base}/v2/a/blobs/${digest}`, { method: "PUT" }),
      405,
      "UNSUPPORTED",
    );
    await expectError(
      await fetch(`${base}/v2/a/blobs/uploads/?digest=sha256:short`, { method: "POST", body: "x" }),
      400,
      "DIGEST_INVALID",
    );
  });
});
