// Hostile input against a real Meridian process: generated (fast-check) requests with
// traversal and encoding tricks in names and references, malformed digests, byte ranges
// and chunk orders, broken manifests, and garbage headers and query strings. For every
// request: never a 5xx, every 4xx carries the spec's JSON error with a code of the OCI
// table, and the server keeps answering. At the end the data folder is checked: every
// blob file hashes to its name, every listed tag resolves, and the images pushed before
// the attacks are byte for byte what they were.
//
// Replay a failure with HOSTILE_SEED=<seed printed in the failure>.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readdir } from "node:fs/promises";
import type { Agent } from "node:http";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import {
  acceptHeader,
  headerText,
  hostileComponent,
  listingQuery,
  malformedDigest,
  readRangeHeader,
  repositoryName,
  validTag,
  wellFormedDigest,
} from "../support/hostile-arbitraries.ts";
import {
  assertBlobFilesVerify,
  assertProtectedIntact,
  assertTagsResolve,
  catalog,
  checkProperty,
  decodedSegment,
  digestOracle,
  hostileSeed,
  isValidName,
  isValidReference,
  type ProtectedImages,
  pushBlobRaw,
  pushManifestRaw,
  pushProtectedImages,
  referencedBlobs,
} from "../support/hostile-fixtures.ts";
import { type MeridianProcess, startMeridian } from "../support/meridian-process.ts";
import {
  dockerManifestType,
  imageManifest,
  ociIndexType,
  ociManifestType,
  randomBlob,
  type TestBlob,
} from "../support/oci-fixtures.ts";
import {
  assertAlive,
  errorCode,
  keepAliveAgent,
  parseSocketResponse,
  type RawRequest,
  type RawResponse,
  rawRequest,
  responseProblem,
  sendWholeBodyThenRead,
  sha256,
  socketExchange,
  type Target,
  targetOf,
} from "../support/raw-http.ts";

const manifestMediaTypes = new Set([
  ociManifestType,
  ociIndexType,
  dockerManifestType,
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.oci.artifact.manifest.v1+json",
]);

describe(`hostile input (seed ${hostileSeed})`, () => {
  let server: MeridianProcess;
  let target: Target;
  let agent: Agent;
  let images: ProtectedImages;

  before(async () => {
    server = await startMeridian();
    target = targetOf(server.url);
    agent = keepAliveAgent();
    images = await pushProtectedImages(target);
  });

  after(async () => {
    agent?.destroy();
    await server?.dispose();
  });

  /** Sends one request and fails on a 5xx or a 4xx without the spec's error body. */
  async function send(request: RawRequest): Promise<RawResponse> {
    let response: RawResponse;
    try {
      response = await rawRequest(target, request, agent);
    } catch (error) {
      throw new Error(
        `${(error as Error).message}\nserver output:\n${server.recentOutput().slice(-3000)}`,
      );
    }
    const problem = responseProblem(request.method, response);
    if (problem) {
      throw new Error(`${request.method} ${request.path.slice(0, 300)}: ${problem}`);
    }
    return response;
  }

  function expectStatus(response: RawResponse, allowed: number[], what: string): void {
    assert.ok(
      allowed.includes(response.status),
      `${what}: status ${response.status} not in ${allowed.join("/")}: ${response.body
        .toString("utf8")
        .slice(0, 300)}`,
    );
  }

  function expectCode(response: RawResponse, codes: string[], what: string): void {
    const code = errorCode(response);
    assert.ok(
      code !== undefined && codes.includes(code),
      `${what}: expected ${codes.join("/")}, got ${response.status} ${response.body.toString("utf8").slice(0, 300)}`,
    );
  }

  // --- 1. Repository names and references -------------------------------------------

  it("never lets a hostile name, reference or upload id through, on any route and method", async () => {
    let realUpload = await startUpload("fuzz/uploads");
    const referenceArb = fc.oneof(
      { weight: 3, arbitrary: validTag },
      { weight: 3, arbitrary: hostileComponent },
      { weight: 1, arbitrary: fc.integer({ min: 129, max: 1500 }).map((n) => "t".repeat(n)) },
      { weight: 1, arbitrary: fc.constant(`t${"x".repeat(127)}`) },
      { weight: 1, arbitrary: wellFormedDigest },
      { weight: 2, arbitrary: malformedDigest },
      { weight: 1, arbitrary: wellFormedDigest.map((d) => d.replace(":", "%3A")) },
    );
    const uploadIdArb = fc.oneof(
      fc.constant("REAL"),
      fc.uuid().map(String),
      fc.uuid().map((u) => u.toUpperCase()),
      hostileComponent,
      fc.constantFrom(
        "..%2f..%2fmetadata.db",
        "%2e%2e%2f%2e%2e%2fblobs",
        "..",
        "info.json",
        "00000000-0000-0000-0000-000000000000%2f..",
      ),
    );
    const routeArb = fc.constantFrom(
      "manifest",
      "blob",
      "uploadStart",
      "upload",
      "tags",
      "referrers",
    );
    const methodArb = fc.oneof(
      { weight: 6, arbitrary: fc.constant("route") },
      {
        weight: 1,
        arbitrary: fc.constantFrom(
          "GET",
          "HEAD",
          "PUT",
          "POST",
          "PATCH",
          "DELETE",
          "OPTIONS",
          "TRACE",
          "PROPFIND",
        ),
      },
    );
    const routeMethods: Record<string, string[]> = {
      manifest: ["GET", "HEAD", "PUT", "DELETE"],
      blob: ["GET", "HEAD", "DELETE"],
      uploadStart: ["POST"],
      upload: ["GET", "PATCH", "PUT", "DELETE"],
      tags: ["GET"],
      referrers: ["GET"],
    };
    const nameArb = fc.oneof(
      { weight: 8, arbitrary: repositoryName },
      { weight: 1, arbitrary: fc.constant("fuzz/uploads") },
    );
    const emptyIndex = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: ociIndexType, manifests: [] }),
    );

    await checkProperty(
      "names and references",
      fc.asyncProperty(
        nameArb,
        routeArb,
        methodArb,
        fc.nat({ max: 100 }),
        referenceArb,
        fc.oneof(wellFormedDigest, malformedDigest),
        uploadIdArb,
        async (name, route, methodChoice, methodIndex, reference, digest, uploadId) => {
          const allowed = routeMethods[route] ?? ["GET"];
          const method =
            methodChoice === "route"
              ? (allowed[methodIndex % allowed.length] ?? "GET")
              : methodChoice;
          const id = uploadId === "REAL" ? realUpload : uploadId;
          let path: string;
          let tailValid = true;
          let body: Buffer | undefined;
          const headers: Record<string, string> = {};
          switch (route) {
            case "manifest":
              path = `/v2/${name}/manifests/${reference}`;
              tailValid = isValidReference(reference);
              if (method === "PUT") {
                body = emptyIndex;
                headers["Content-Type"] = ociIndexType;
              }
              break;
            case "blob":
              path = `/v2/${name}/blobs/${digest}`;
              tailValid = digestOracle.test(decodedSegment(digest));
              break;
            case "uploadStart":
              path = `/v2/${name}/blobs/uploads/`;
              break;
            case "upload": {
              path = `/v2/${name}/blobs/uploads/${id}`;
              tailValid = name === "fuzz/uploads" && id === realUpload;
              if (method === "PATCH" || method === "PUT") body = Buffer.from("hostile chunk");
              if (method === "PUT") path += `?digest=${sha256(Buffer.from("hostile chunk"))}`;
              break;
            }
            case "tags":
              path = `/v2/${name}/tags/list`;
              break;
            default:
              path = `/v2/${name}/referrers/${digest}`;
              tailValid = digestOracle.test(decodedSegment(digest));
          }
          const response = await send({ method, path, headers, body });
          const nameValid = isValidName(name);
          if (!nameValid || !tailValid) {
            assert.ok(
              response.status >= 400,
              `${method} ${path.slice(0, 300)} succeeded with ${response.status}`,
            );
          }
          if (
            !nameValid &&
            method !== "HEAD" &&
            allowed.includes(method) &&
            ![404, 405, 414].includes(response.status)
          ) {
            expectCode(response, ["NAME_INVALID"], `${method} ${path.slice(0, 200)}`);
          }
          if (route === "upload" && id === realUpload && response.status < 300) {
            if (method === "PUT" || method === "DELETE")
              realUpload = await startUpload("fuzz/uploads");
          }
        },
      ),
      300,
    );
    await assertAlive(target, "after hostile names");
  });

  // --- 2. Digests in paths and in ?digest= and ?mount= --------------------------------

  it("rejects every malformed digest, in paths, ?digest= and ?mount=, and stores nothing for it", async () => {
    const protectedBlob = images.manifests[0]?.blobs[0] as TestBlob;
    const protectedManifest = images.manifests[0];
    assert.ok(protectedBlob && protectedManifest);
    let run = 0;
    const digestArb = fc.oneof(
      { weight: 3, arbitrary: malformedDigest.map((d) => ({ kind: "malformed", d })) },
      { weight: 2, arbitrary: wellFormedDigest.map((d) => ({ kind: "unknown", d })) },
      { weight: 2, arbitrary: fc.constant({ kind: "content", d: "" }) },
      { weight: 1, arbitrary: fc.constant({ kind: "content512", d: "" }) },
      {
        weight: 1,
        arbitrary: fc.constantFrom(...images.blobDigests).map((d) => ({ kind: "protected", d })),
      },
    );
    await checkProperty(
      "digests",
      fc.asyncProperty(
        digestArb,
        fc.constantFrom(
          "post-digest",
          "put-digest",
          "mount",
          "blob-get",
          "blob-head",
          "blob-delete",
          "manifest-get",
          "manifest-delete",
          "referrers",
        ),
        fc.boolean(),
        fc.uint8Array({ maxLength: 64 }),
        fc.oneof(fc.constantFrom(...images.repositories), repositoryName),
        async (choice, where, encodeColon, bodyBytes, from) => {
          run += 1;
          const body = Buffer.from(bodyBytes);
          let digest = choice.d;
          if (choice.kind === "content") digest = sha256(body);
          if (choice.kind === "content512") {
            digest = `sha512:${createHash("sha512").update(body).digest("hex")}`;
          }
          const sent = encodeColon ? digest.replace(":", "%3A") : digest;
          const wellFormed = digestOracle.test(decodedSegment(sent));
          const repo = `fuzz/digest-${run}`;
          // A raw "/" in a digest moves the route: no API path then (404 NAME_UNKNOWN).
          const unrouted = sent === "" || sent.includes("/");
          const routed = (codes: string[]) => (unrouted ? [...codes, "NAME_UNKNOWN"] : codes);
          const what = `${where} ${sent.slice(0, 150)}`;
          switch (where) {
            case "post-digest": {
              const response = await send({
                method: "POST",
                path: `/v2/${repo}/blobs/uploads/?digest=${sent}`,
                body,
              });
              const matches = digest === sha256(body) || choice.kind === "content512";
              if (wellFormed && matches) expectStatus(response, [201], what);
              else {
                expectStatus(response, [400], what);
                expectCode(response, ["DIGEST_INVALID"], what);
              }
              if (wellFormed) await expectBlobLinked(repo, digest, wellFormed && matches);
              break;
            }
            case "put-digest": {
              const location = `/v2/${repo}/blobs/uploads/${await startUpload(repo)}`;
              expectStatus(await send({ method: "PATCH", path: location, body }), [202], what);
              const response = await send({ method: "PUT", path: `${location}?digest=${sent}` });
              const matches = digest === sha256(body) || choice.kind === "content512";
              if (wellFormed && matches) expectStatus(response, [201], what);
              else expectCode(response, ["DIGEST_INVALID"], what);
              if (wellFormed) await expectBlobLinked(repo, digest, matches);
              break;
            }
            case "mount": {
              const response = await send({
                method: "POST",
                path: `/v2/${repo}/blobs/uploads/?mount=${sent}&from=${from}`,
              });
              // A query string is percent-decoded before the name is checked (a%2Fb is a/b).
              const decodedFrom = new URLSearchParams(`from=${from}`).get("from") ?? "";
              if (!wellFormed) expectCode(response, ["DIGEST_INVALID"], what);
              else if (!isValidName(decodedFrom)) expectCode(response, ["NAME_INVALID"], what);
              else if (
                images.manifests.some(
                  (m) => m.repository === decodedFrom && m.blobs.some((b) => b.digest === digest),
                )
              ) {
                expectStatus(response, [201], what);
                await expectBlobLinked(repo, digest, true);
              } else {
                expectStatus(response, [202], what);
                assert.match(String(response.headers.location), /\/blobs\/uploads\/[0-9a-f-]{36}$/);
                await expectBlobLinked(repo, digest, false);
              }
              break;
            }
            case "blob-get":
            case "blob-head": {
              const method = where === "blob-get" ? "GET" : "HEAD";
              const holder = images.manifests.find((m) => m.blobs.some((b) => b.digest === digest));
              const repository = holder?.repository ?? images.repositories[0] ?? "";
              const response = await send({ method, path: `/v2/${repository}/blobs/${sent}` });
              if (!wellFormed) expectStatus(response, unrouted ? [400, 404] : [400], what);
              else if (holder) expectStatus(response, [200], what);
              else expectStatus(response, [404], what);
              if (method === "GET" && !wellFormed)
                expectCode(response, routed(["DIGEST_INVALID"]), what);
              break;
            }
            case "blob-delete": {
              const response = await send({ method: "DELETE", path: `/v2/${repo}/blobs/${sent}` });
              expectCode(
                response,
                wellFormed ? ["BLOB_UNKNOWN"] : routed(["DIGEST_INVALID"]),
                what,
              );
              break;
            }
            case "manifest-get": {
              const response = await send({
                method: "GET",
                path: `/v2/${protectedManifest.repository}/manifests/${sent}`,
              });
              assert.ok(response.status >= 400, `${what}: ${response.status}`);
              // A reference that is no digest names no manifest (as Distribution answers).
              expectCode(response, routed(["MANIFEST_UNKNOWN"]), what);
              break;
            }
            case "manifest-delete": {
              const response = await send({
                method: "DELETE",
                path: `/v2/${repo}/manifests/${sent}`,
              });
              expectCode(
                response,
                routed(["DIGEST_INVALID", "TAG_INVALID", "MANIFEST_UNKNOWN"]),
                what,
              );
              break;
            }
            default: {
              const response = await send({
                method: "GET",
                path: `/v2/${protectedManifest.repository}/referrers/${sent}`,
              });
              if (!wellFormed) expectCode(response, routed(["DIGEST_INVALID"]), what);
              else {
                expectStatus(response, [200], what);
                const index = JSON.parse(response.body.toString("utf8")) as {
                  schemaVersion: number;
                  manifests: unknown[];
                };
                assert.equal(index.schemaVersion, 2);
                assert.deepEqual(index.manifests, []);
              }
            }
          }
        },
      ),
      250,
    );
    await assertAlive(target, "after hostile digests");
  });

  async function startUpload(repository: string): Promise<string> {
    const response = await send({ method: "POST", path: `/v2/${repository}/blobs/uploads/` });
    expectStatus(response, [202], `start upload in ${repository}`);
    const id = String(response.headers.location).split("/").pop() ?? "";
    assert.match(id, /^[0-9a-f-]{36}$/);
    return id;
  }

  async function expectBlobLinked(repository: string, digest: string, linked: boolean) {
    const response = await send({ method: "HEAD", path: `/v2/${repository}/blobs/${digest}` });
    expectStatus(response, [linked ? 200 : 404], `HEAD ${repository}@${digest}`);
  }

  // --- 3. Range on reads; Content-Range and chunk order on uploads --------------------

  it("answers every Range header with the whole blob, the right slice, or 416", async () => {
    const blob = randomBlob(1000);
    const empty = randomBlob(0);
    await pushBlobRaw(target, "fuzz/range", blob);
    await pushBlobRaw(target, "fuzz/range", empty);
    await checkProperty(
      "read ranges",
      fc.asyncProperty(
        readRangeHeader,
        fc.boolean(),
        fc.boolean(),
        async (range, useEmpty, head) => {
          const subject = useEmpty ? empty : blob;
          const method = head ? "HEAD" : "GET";
          const response = await send({
            method,
            path: `/v2/fuzz/range/blobs/${subject.digest}`,
            headers: { Range: range },
          });
          const what = `${method} Range: ${JSON.stringify(range)} on ${subject.size} bytes`;
          const size = subject.size;
          if (response.status === 200) {
            assert.equal(response.headers["content-length"], String(size), what);
            if (!head) assert.ok(response.body.equals(subject.bytes), what);
          } else if (response.status === 206) {
            const match = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(
              String(response.headers["content-range"]),
            );
            assert.ok(match, `${what}: Content-Range ${response.headers["content-range"]}`);
            const [start, end, total] = [Number(match[1]), Number(match[2]), Number(match[3])];
            assert.equal(total, size, what);
            assert.ok(start <= end && end < size, `${what}: ${start}-${end}`);
            assert.ok(response.body.equals(subject.bytes.subarray(start, end + 1)), what);
          } else {
            expectStatus(response, [416], what);
            assert.equal(response.headers["content-range"], `bytes */${size}`, what);
            expectCode(response, ["RANGE_INVALID"], what);
          }
          // The unambiguous cases, by RFC 9110.
          const simple = /^bytes=(\d{1,6})-(\d{0,6})$/.exec(range);
          const suffix = /^bytes=-(\d{1,6})$/.exec(range);
          if (!head && simple) {
            const first = Number(simple[1]);
            const last = simple[2] === "" ? undefined : Number(simple[2]);
            if (first >= size) expectStatus(response, [416], what);
            else if (last === undefined || last >= first) {
              expectStatus(response, [206], what);
              const end = Math.min(last ?? size - 1, size - 1);
              assert.equal(
                response.headers["content-range"],
                `bytes ${first}-${end}/${size}`,
                what,
              );
            } else expectStatus(response, [200, 416], what);
          }
          if (!head && suffix) {
            const length = Number(suffix[1]);
            if (length === 0 || size === 0) expectStatus(response, [416], what);
            else {
              expectStatus(response, [206], what);
              const start = Math.max(0, size - length);
              assert.equal(
                response.headers["content-range"],
                `bytes ${start}-${size - 1}/${size}`,
                what,
              );
            }
          }
        },
      ),
      250,
    );
  });

  it("keeps an upload a consistent prefix whatever order, overlap, gap or repeat its chunks come in", async () => {
    const chunkOp = fc.record({
      start: fc.constantFrom(
        "current",
        "current",
        "current",
        "gap",
        "overlap",
        "zero",
        "huge",
        "repeat",
      ),
      length: fc.integer({ min: 1, max: 700 }),
      delta: fc.integer({ min: 1, max: 500 }),
      style: fc.constantFrom(
        "plain",
        "plain",
        "bytes-space",
        "bytes-eq",
        "total",
        "star",
        "garbage",
        "none",
        "inverted",
      ),
      framing: fc.constantFrom("length", "length", "chunked", "mismatch"),
      garbage: headerText(30),
    });
    let chunkRun = 0;
    await checkProperty(
      "chunk order",
      fc.asyncProperty(
        fc.uint8Array({ minLength: 1, maxLength: 3000 }),
        fc.array(chunkOp, { minLength: 1, maxLength: 8 }),
        fc.boolean(),
        async (blobBytes, ops, finishWithBlob) => {
          const blob = Buffer.from(blobBytes);
          chunkRun += 1;
          const repo = `fuzz/chunks-${chunkRun}`;
          const id = await startUpload(repo);
          const location = `/v2/${repo}/blobs/uploads/${id}`;
          let stored = Buffer.alloc(0);
          let last: { start: number; bytes: Buffer } | undefined;
          for (const op of ops) {
            const current = stored.length;
            let start: number;
            switch (op.start) {
              case "gap":
                start = current + op.delta;
                break;
              case "overlap":
                start = Math.max(0, current - op.delta);
                break;
              case "zero":
                start = 0;
                break;
              case "huge":
                start = 999_999_999_999_999 - op.length;
                break;
              case "repeat":
                start = last?.start ?? current;
                break;
              default:
                start = current;
            }
            let bytes =
              op.start === "repeat" && last
                ? last.bytes
                : start + op.length <= blob.length
                  ? blob.subarray(start, start + op.length)
                  : Buffer.alloc(op.length, 0x5a);
            let end = start + bytes.length - 1;
            if (op.framing === "mismatch") bytes = bytes.subarray(0, Math.max(0, bytes.length - 1));
            if (op.style === "inverted") end = start - 1 - (op.delta % 3);
            const ranges: Record<string, string> = {
              plain: `${start}-${end}`,
              "bytes-space": `bytes ${start}-${end}`,
              "bytes-eq": `bytes=${start}-${end}`,
              total: `${start}-${end}/${blob.length}`,
              star: `bytes ${start}-${end}/*`,
              garbage: `#${op.garbage}`,
              inverted: `${start}-${end}`,
            };
            const headers: Record<string, string> = {};
            const contentRange = ranges[op.style];
            if (contentRange !== undefined) headers["Content-Range"] = contentRange;
            const response = await send({
              method: "PATCH",
              path: location,
              headers,
              body: bytes,
              chunked: op.framing === "chunked",
            });
            const what = `PATCH Content-Range ${JSON.stringify(contentRange)} (${op.framing}, ${bytes.length} bytes) at ${current}`;
            const lengthAgrees = op.framing !== "mismatch" || bytes.length === end - start + 1;
            const acceptable =
              op.style === "none" ||
              (op.style !== "garbage" &&
                op.style !== "inverted" &&
                start === current &&
                lengthAgrees);
            if (acceptable) {
              expectStatus(response, [202], what);
              stored = Buffer.concat([stored, bytes]);
              last = { start: current, bytes };
            } else if (
              op.framing === "chunked" &&
              op.style !== "garbage" &&
              op.style !== "inverted" &&
              start === current
            ) {
              // A chunked body has no length to compare with the range before it arrives.
              expectStatus(response, [202, 416], what);
              if (response.status === 202) stored = Buffer.concat([stored, bytes]);
            } else {
              expectStatus(response, [416], what);
              expectCode(response, ["RANGE_INVALID"], what);
            }
            const expectedRange = `0-${Math.max(0, stored.length - 1)}`;
            if (response.status === 202) assert.equal(response.headers.range, expectedRange, what);
            if (response.status === 416 && response.headers.range !== undefined) {
              assert.equal(response.headers.range, expectedRange, what);
            }
            const status = await send({ method: "GET", path: location });
            expectStatus(status, [204], `status after ${what}`);
            assert.equal(status.headers.range, expectedRange, `Range after ${what}`);
          }
          const claimed = finishWithBlob ? blob : stored;
          const done = await send({ method: "PUT", path: `${location}?digest=${sha256(claimed)}` });
          if (claimed.equals(stored)) {
            expectStatus(done, [201], "PUT after the chunks");
            const read = await send({ method: "GET", path: `/v2/${repo}/blobs/${sha256(stored)}` });
            assert.ok(read.body.equals(stored), "the blob is what was accepted, in order");
          } else {
            expectCode(done, ["DIGEST_INVALID"], "PUT with the digest of bytes never accepted");
            await expectBlobLinked(repo, sha256(claimed), false);
          }
        },
      ),
      100,
    );
    await assertAlive(target, "after chunk orders");
  });

  // --- 4. Manifests ---------------------------------------------------------------------

  it("stores a generated manifest only when it is valid and everything it references is there", async () => {
    const repo = "fuzz/manifests";
    const config = randomBlob(100);
    const layers = [randomBlob(1000), randomBlob(10)];
    for (const blob of [config, ...layers]) await pushBlobRaw(target, repo, blob);
    const child = imageManifest(config, layers);
    await pushManifestRaw(target, repo, child.digest, Buffer.from(child.json), ociManifestType);
    const missing = randomBlob(33);
    const descriptor = (blob: TestBlob, mediaType: string) => ({
      mediaType,
      digest: blob.digest,
      size: blob.size,
    });
    const bases: Record<string, Record<string, unknown>> = {
      oci: JSON.parse(child.json),
      docker: JSON.parse(imageManifest(config, layers, {}, dockerManifestType).json),
      index: {
        schemaVersion: 2,
        mediaType: ociIndexType,
        manifests: [descriptor({ ...child }, ociManifestType)],
      },
      artifact: {
        schemaVersion: 2,
        mediaType: ociManifestType,
        artifactType: "application/vnd.example.sbom",
        config: {
          mediaType: "application/vnd.oci.empty.v1+json",
          digest: config.digest,
          size: config.size,
        },
        layers: [descriptor(layers[0] as TestBlob, "application/json")],
        subject: descriptor({ ...child }, ociManifestType),
        annotations: { "org.example": "x" },
      },
    };
    const fieldPaths: (string | number)[][] = [
      ["schemaVersion"],
      ["mediaType"],
      ["config"],
      ["config", "digest"],
      ["config", "size"],
      ["config", "mediaType"],
      ["layers"],
      ["layers", 0],
      ["layers", 0, "digest"],
      ["layers", 0, "size"],
      ["layers", 0, "urls"],
      ["layers", 0, "annotations"],
      ["manifests"],
      ["manifests", 0],
      ["manifests", 0, "digest"],
      ["subject"],
      ["subject", "digest"],
      ["annotations"],
      ["annotations", "k"],
      ["artifactType"],
      ["blobs"],
      ["__proto__"],
      ["constructor"],
    ];
    const valueArb = fc.oneof(
      fc.jsonValue({ maxDepth: 3 }),
      fc.constantFrom(
        missing.digest,
        config.digest,
        child.digest,
        `sha256:${"A".repeat(64)}`,
        -1,
        1.5,
        2 ** 53,
        "10",
        null,
        [],
        {},
        ...manifestMediaTypes,
        "application/vnd.oci.empty.v1+json",
        "",
      ),
      fc.constant(descriptor(missing, "application/octet-stream")),
      fc.constant([descriptor(missing, "application/octet-stream")]),
      fc.constant({ mediaType: ociManifestType, digest: child.digest, size: child.size }),
    );
    const mutation = fc.oneof(
      fc.record({
        op: fc.constant("set" as const),
        path: fc.constantFrom(...fieldPaths),
        value: valueArb,
      }),
      fc.record({
        op: fc.constant("delete" as const),
        path: fc.constantFrom(...fieldPaths),
        value: fc.constant(null),
      }),
    );
    const encoding = fc.constantFrom(
      "json",
      "json",
      "pretty",
      "bom",
      "truncated",
      "array",
      "garbage",
      "trailing",
    );
    const contentType = fc.constantFrom(
      "declared",
      "declared",
      "none",
      "application/json",
      ociManifestType,
      ociIndexType,
      dockerManifestType,
      "application/vnd.docker.distribution.manifest.v1+prettyjws",
      "text/plain; charset=utf-8",
      `${ociManifestType}; charset=utf-8`,
      ociManifestType.toUpperCase(),
      "garbage/\u00e9",
    );
    const referenceKind = fc.constantFrom("tag", "tag", "digest", "digest512", "wrong-digest");

    await checkProperty(
      "manifests",
      fc.asyncProperty(
        fc.constantFrom(...Object.keys(bases)),
        fc.array(mutation, { maxLength: 3 }),
        encoding,
        contentType,
        referenceKind,
        fc.constantFrom("fz-1", "fz-2", "latest"),
        fc.string({ maxLength: 200 }),
        async (baseName, mutations, encode, type, refKind, tag, garbage) => {
          const body = structuredClone(bases[baseName]) as Record<string, unknown>;
          for (const m of mutations) applyMutation(body, m.path, m.op, m.value);
          let text = JSON.stringify(body);
          if (encode === "pretty") text = JSON.stringify(body, null, 2);
          if (encode === "bom") text = `\ufeff${text}`;
          if (encode === "truncated") text = text.slice(0, Math.max(0, text.length - 7));
          if (encode === "array") text = `[${text}]`;
          if (encode === "garbage") text = garbage;
          if (encode === "trailing") text = `${text} {}`;
          const bytes = Buffer.from(text, "utf8");
          const headers: Record<string, string> = {};
          const declared = typeof body.mediaType === "string" ? body.mediaType : ociManifestType;
          if (type === "declared") headers["Content-Type"] = declared.replace(/[^\x20-\x7e]/g, "");
          else if (type !== "none") headers["Content-Type"] = type.replace(/[^\x20-\x7e]/g, "");
          const sha512 = `sha512:${createHash("sha512").update(bytes).digest("hex")}`;
          const reference =
            refKind === "tag"
              ? tag
              : refKind === "digest"
                ? sha256(bytes)
                : refKind === "digest512"
                  ? sha512
                  : missing.digest;
          const what = `PUT ${baseName} ${JSON.stringify(mutations).slice(0, 300)} as ${encode}, ${type}, ${reference}`;
          const response = await send({
            method: "PUT",
            path: `/v2/${repo}/manifests/${reference}`,
            headers,
            body: bytes,
          });
          expectStatus(response, [201, 400], what);
          if (response.status === 400) {
            expectCode(
              response,
              ["MANIFEST_INVALID", "MANIFEST_BLOB_UNKNOWN", "DIGEST_INVALID"],
              what,
            );
            if (refKind === "wrong-digest") expectCode(response, ["DIGEST_INVALID"], what);
            return;
          }
          assert.notEqual(
            refKind,
            "wrong-digest",
            `${what}: stored under a digest it does not have`,
          );
          const digest = refKind === "digest512" ? sha512 : sha256(bytes);
          assert.equal(response.headers["docker-content-digest"], digest, what);
          const stored = await send({ method: "GET", path: `/v2/${repo}/manifests/${digest}` });
          expectStatus(stored, [200], `${what}: GET by digest`);
          assert.ok(stored.body.equals(bytes), `${what}: stored bytes differ`);
          assert.ok(manifestMediaTypes.has(String(stored.headers["content-type"])), what);
          const parsed = JSON.parse(text) as { manifests?: { digest: string }[] };
          const storedType = String(stored.headers["content-type"]);
          const isIndex = storedType === ociIndexType || storedType.includes("manifest.list");
          for (const blobDigest of referencedBlobs(bytes, storedType)) {
            await expectBlobLinked(repo, blobDigest, true);
          }
          for (const manifest of isIndex ? (parsed.manifests ?? []) : []) {
            const childResponse = await send({
              method: "HEAD",
              path: `/v2/${repo}/manifests/${manifest.digest}`,
            });
            expectStatus(childResponse, [200], `${what}: child ${manifest.digest}`);
          }
        },
      ),
      250,
    );
    await assertAlive(target, "after generated manifests");
  });

  it("refuses a manifest over 4 MiB with 413, whether its length is declared or chunked", async () => {
    const huge = Buffer.alloc(4 * 1024 * 1024 + 1, 0x20);
    huge.write('{"schemaVersion":2,"x":"');
    huge.write('"}', huge.length - 2);
    for (const chunked of [false, true]) {
      for (const reference of ["huge", sha256(huge)]) {
        const response = await send({
          method: "PUT",
          path: `/v2/fuzz/huge/manifests/${reference}`,
          headers: { "Content-Type": ociManifestType },
          body: huge,
          chunked,
          timeoutMs: 30_000,
        });
        expectStatus(response, [413], `${chunked ? "chunked" : "declared"} ${reference}`);
        expectCode(response, ["MANIFEST_INVALID"], "huge manifest");
      }
    }
    // Exactly at the limit is not too large (it is refused for what it is, not its size).
    const limit = Buffer.alloc(4 * 1024 * 1024, 0x20);
    limit.write("[]");
    const response = await send({
      method: "PUT",
      path: "/v2/fuzz/huge/manifests/limit",
      headers: { "Content-Type": ociManifestType },
      body: limit,
    });
    expectCode(response, ["MANIFEST_INVALID"], "4 MiB manifest");
    assert.equal(response.status, 400);
    await assertAlive(target, "after huge manifests");
  });

  it("answers an oversized manifest to a client that writes its whole body before reading", async () => {
    // Python's requests and many scripts send the entire body first: the server must keep
    // reading (and discarding) it after deciding on 413, or the client never sees the answer.
    const bodyBytes = 24 * 1024 * 1024;
    for (const chunked of [false, true]) {
      const framing = chunked ? "Transfer-Encoding: chunked" : `Content-Length: ${bodyBytes}`;
      const response = await sendWholeBodyThenRead(
        target,
        `PUT /v2/fuzz/huge/manifests/whole HTTP/1.1\r\nHost: ${target.host}\r\n` +
          `Content-Type: ${ociManifestType}\r\n${framing}\r\n\r\n`,
        bodyBytes,
        { chunked },
      );
      expectStatus(response, [413], `${framing}, whole body first`);
      expectCode(response, ["MANIFEST_INVALID"], "oversized manifest");
    }
    await assertAlive(target, "after whole oversized bodies");
  });

  it("survives deeply nested JSON in a manifest without crashing the parser or the process", async () => {
    const depth = 100_000;
    const config = randomBlob(50);
    await pushBlobRaw(target, "fuzz/deep", config);
    const bodies: [string, string, number[]][] = [
      ["nested arrays", `${"[".repeat(depth)}${"]".repeat(depth)}`, [400]],
      ["nested objects", `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`, [400]],
      ["unclosed arrays", "[".repeat(depth * 10), [400]],
      [
        "nested in annotations",
        `{"schemaVersion":2,"mediaType":"${ociManifestType}","config":{"mediaType":"x/y","digest":"${config.digest}","size":${config.size}},"layers":[],"annotations":{"a":${"[".repeat(depth)}${"]".repeat(depth)}}}`,
        [400],
      ],
      [
        "nested in a descriptor",
        `{"schemaVersion":2,"mediaType":"${ociManifestType}","config":{"mediaType":"x/y","digest":"${config.digest}","size":${config.size},"x":${"[".repeat(depth)}${"]".repeat(depth)}},"layers":[]}`,
        [201],
      ],
      [
        "nested in an unknown field",
        `{"schemaVersion":2,"mediaType":"${ociManifestType}","config":{"mediaType":"x/y","digest":"${config.digest}","size":${config.size}},"layers":[],"x":${'{"a":'.repeat(depth)}1${"}".repeat(depth)}}`,
        [201],
      ],
    ];
    for (const [what, text, statuses] of bodies) {
      const bytes = Buffer.from(text);
      const response = await send({
        method: "PUT",
        path: `/v2/fuzz/deep/manifests/${sha256(bytes)}`,
        headers: { "Content-Type": ociManifestType },
        body: bytes,
      });
      expectStatus(response, statuses, what);
      if (response.status === 400) expectCode(response, ["MANIFEST_INVALID"], what);
      else {
        const stored = await send({
          method: "GET",
          path: `/v2/fuzz/deep/manifests/${sha256(bytes)}`,
        });
        assert.ok(stored.body.equals(bytes), what);
        // Listing referrers and tags of a repository holding it still works.
        expectStatus(
          await send({ method: "GET", path: `/v2/fuzz/deep/referrers/${config.digest}` }),
          [200],
          what,
        );
      }
      await assertAlive(target, `after ${what}`);
    }
  });

  // --- 5. Headers and query strings -------------------------------------------------------

  it("answers garbage query strings, repeated parameters and odd Accept headers sanely", async () => {
    const manifests = images.manifests;
    const requestArb = fc.oneof(
      fc.record({
        kind: fc.constant("tags" as const),
        repository: fc.constantFrom(...images.repositories, "fuzz/manifests", "no/such/repo"),
        query: listingQuery,
      }),
      fc.record({
        kind: fc.constant("catalog" as const),
        repository: fc.constant(""),
        query: listingQuery,
      }),
      fc.record({
        kind: fc.constant("accept" as const),
        repository: fc.constant(""),
        query: fc.constantFrom("", "n=1", "digest=x", `x=${"y".repeat(5000)}`),
      }),
    );
    await checkProperty(
      "headers and queries",
      fc.asyncProperty(
        requestArb,
        acceptHeader,
        fc.nat({ max: 100 }),
        fc.oneof(headerText(200), fc.constantFrom("ok-id_1.2", "x".repeat(129), "a b", "")),
        async (request, accept, pick, requestId) => {
          const headers: Record<string, string> = { "X-Request-Id": requestId };
          const echoed = (response: RawResponse) => {
            const id = String(response.headers["x-request-id"]);
            assert.match(id, /^[A-Za-z0-9._-]{1,128}$/, "X-Request-Id echoed unsanitised");
            if (/^[A-Za-z0-9._-]{1,128}$/.test(requestId)) assert.equal(id, requestId);
          };
          if (request.kind === "accept") {
            const manifest = manifests[pick % manifests.length];
            assert.ok(manifest);
            headers.Accept = accept;
            const path = `/v2/${manifest.repository}/manifests/${pick % 2 ? manifest.tag : manifest.digest}?${request.query}`;
            const response = await send({ method: pick % 3 ? "GET" : "HEAD", path, headers });
            echoed(response);
            if (response.status === 200) {
              assert.equal(response.headers["docker-content-digest"], manifest.digest);
              if (pick % 3) assert.ok(response.body.equals(manifest.bytes), `Accept: ${accept}`);
            } else {
              expectStatus(response, [404], `Accept: ${accept}`);
              if (pick % 3) expectCode(response, ["MANIFEST_UNKNOWN"], `Accept: ${accept}`);
            }
            return;
          }
          const path =
            request.kind === "catalog"
              ? `/v2/_catalog?${request.query}`
              : `/v2/${request.repository}/tags/list?${request.query}`;
          const response = await send({ method: "GET", path, headers });
          echoed(response);
          const what = `GET ${path.slice(0, 200)}`;
          if (path.length > 8192) {
            expectStatus(response, [414], what);
            return;
          }
          if (response.status !== 200) {
            expectCode(response, ["PAGINATION_NUMBER_INVALID", "NAME_UNKNOWN"], what);
            return;
          }
          const listing = JSON.parse(response.body.toString("utf8")) as {
            tags?: string[];
            repositories?: string[];
          };
          const items = (request.kind === "catalog" ? listing.repositories : listing.tags) ?? [];
          assert.ok(Array.isArray(items), what);
          assert.deepEqual([...items].sort(), items, `${what}: not in lexical order`);
          const n = new URLSearchParams(request.query).get("n");
          if (n !== null && /^\d{1,9}$/.test(n)) assert.ok(items.length <= Number(n), what);
          const link = response.headers.link;
          if (link !== undefined) {
            assert.match(String(link), /^<\/v2\/[^>]+\?n=\d+&last=[^>]*>; rel="next"$/, what);
          }
        },
      ),
      250,
    );
    await assertAlive(target, "after garbage headers");
  });

  // --- Raw bytes node:http will not send ---------------------------------------------------

  const rawRequests: [string, string][] = [
    ["control character in the path", "GET /v2/a\x01b/tags/list HTTP/1.1\r\nHost: x\r\n\r\n"],
    ["NUL in the path", "GET /v2/a\x00b/manifests/x HTTP/1.1\r\nHost: x\r\n\r\n"],
    ["raw UTF-8 in the path", "GET /v2/\u00c3\u00a9/manifests/x HTTP/1.1\r\nHost: x\r\n\r\n"],
    [
      "raw UTF-8 in the tag",
      "PUT /v2/a/manifests/t\u00c3\u00a9 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
    ],
    ["unknown method", "BREW /v2/ HTTP/1.1\r\nHost: x\r\n\r\n"],
    ["no Host header", "GET /v2/ HTTP/1.1\r\n\r\n"],
    [
      "malformed Content-Length",
      "PUT /v2/a/manifests/t HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    ],
    [
      "Content-Length and chunked",
      "PATCH /v2/a/blobs/uploads/x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ],
    [
      "bad chunk size",
      "PATCH /v2/a/blobs/uploads/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    ],
    ["unsupported Expect", "GET /v2/ HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n"],
    ["header over 16 KiB", `GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`],
    ["URL over 16 KiB", `GET /v2/${"a".repeat(20_000)}/tags/list HTTP/1.1\r\nHost: x\r\n\r\n`],
    ["header without a colon", "GET /v2/ HTTP/1.1\r\nHost: x\r\nbroken header\r\n\r\n"],
    ["HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"],
  ];

  it("answers request lines and headers the HTTP parser refuses with a 4xx, never a 5xx or a hang", async () => {
    for (const [what, raw] of rawRequests) {
      const exchange = await socketExchange(target, Buffer.from(raw, "latin1"));
      assert.ok(
        exchange.closed || exchange.status !== undefined,
        `${what}: no answer and no close`,
      );
      if (exchange.status !== undefined) {
        assert.ok(exchange.status >= 400 && exchange.status < 500, `${what}: ${exchange.status}`);
      }
      await assertAlive(target, `after ${what}`);
    }
    // A CONNECT (no proxying here) must not take the server down either.
    const connect = await socketExchange(target, "CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert.ok(connect.closed || (connect.status ?? 0) < 500);
    await assertAlive(target, "after CONNECT");
  });

  it("answers what the HTTP parser refuses with the spec's JSON error body too", async () => {
    const bare: string[] = [];
    for (const [what, raw] of rawRequests) {
      const exchange = await socketExchange(target, Buffer.from(raw, "latin1"));
      const response = parseSocketResponse(exchange.bytes);
      if (!response) {
        bare.push(`${what}: no response`);
        continue;
      }
      const problem = responseProblem("GET", response);
      if (problem) bare.push(`${what}: ${problem}`);
    }
    assert.deepEqual(bare, []);
  });

  // --- Afterwards --------------------------------------------------------------------------

  it("leaves every blob matching its digest, every listed tag resolving, the pushed images intact", async () => {
    assert.equal(server.child.exitCode, null, "the server process exited");
    await assertAlive(target, "at the end");
    await assertProtectedIntact(target, images);
    for (const repository of images.repositories) {
      assert.ok((await assertTagsResolve(target, repository)) > 0);
    }
    // Every tag of every repository the attacks created resolves too.
    for (const repository of await catalog(target)) await assertTagsResolve(target, repository);
    assert.ok((await assertBlobFilesVerify(server.dataDir)) > 0);
    // Nothing half-written is left in tmp/, and nothing escaped the data folder's layout.
    assert.deepEqual(await readdir(join(server.dataDir, "tmp")), []);
    const expected = new Set(["blobs", "replica-id", "routing.json", "tmp", "uploads"]);
    for (const entry of await readdir(server.dataDir)) {
      // No small-blobs.db: a replica keeps its small blobs in metadata.db.
      const database = ["metadata.db", "webhooks.db", "uploads.db"].some((name) =>
        entry.startsWith(name),
      );
      assert.ok(expected.has(entry) || database, `unexpected ${entry}`);
    }
    const uploads = await readdir(join(server.dataDir, "uploads"));
    for (const id of uploads)
      assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  });
});

function applyMutation(
  body: Record<string, unknown>,
  path: (string | number)[],
  op: "set" | "delete",
  value: unknown,
): void {
  let node: unknown = body;
  for (const key of path.slice(0, -1)) {
    if (typeof node !== "object" || node === null) return;
    node = (node as Record<string | number, unknown>)[key];
  }
  const last = path[path.length - 1];
  if (typeof node !== "object" || node === null || last === undefined) return;
  const record = node as Record<string | number, unknown>;
  if (op === "delete") delete record[last];
  // A copy: generated values are shared between runs and must not be tied into cycles.
  else
    Object.defineProperty(record, last, {
      value: structuredClone(value),
      enumerable: true,
      writable: true,
      configurable: true,
    });
}
