// Many clients at once against a real Meridian process: the same blob pushed by 16
// clients (monolithic and chunked), the same tag written by 16 clients with different
// manifests, and a manifest (and a blob) deleted while other clients pull it. Each
// client has its own connection; nothing here sleeps to synchronise.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  assertBlobFilesVerify,
  pushBlobRaw,
  referencedBlobs,
} from "../support/hostile-fixtures.ts";
import { type MeridianProcess, startMeridian } from "../support/meridian-process.ts";
import {
  blobOf,
  imageManifest,
  ociManifestType,
  randomBlob,
  type TestBlob,
} from "../support/oci-fixtures.ts";
import {
  errorCode,
  type RawResponse,
  rawRequest,
  responseProblem,
  type Target,
  targetOf,
} from "../support/raw-http.ts";
import { storedBlob } from "../support/stored-blobs.ts";
import { waitFor } from "../support/wait-for.ts";

const clients = 16;

describe("many clients at once", () => {
  let server: MeridianProcess;
  let target: Target;

  before(async () => {
    server = await startMeridian();
    target = targetOf(server.url);
  });

  after(() => server?.dispose());

  /** One request on its own connection; fails on a 5xx or a malformed error body. */
  async function send(
    method: string,
    path: string,
    options: { body?: Buffer; headers?: Record<string, string> } = {},
  ): Promise<RawResponse> {
    const response = await rawRequest(target, { method, path, ...options, timeoutMs: 30_000 });
    const problem = responseProblem(method, response);
    assert.equal(problem, undefined, `${method} ${path}: ${problem}`);
    return response;
  }

  async function chunkedPush(
    repository: string,
    blob: TestBlob,
    pieces: number,
  ): Promise<RawResponse> {
    const start = await send("POST", `/v2/${repository}/blobs/uploads/`);
    assert.equal(start.status, 202);
    let location = String(start.headers.location);
    const step = Math.ceil(blob.size / pieces);
    for (let at = 0; at < blob.size; at += step) {
      const chunk = blob.bytes.subarray(at, at + step);
      const patch = await send("PATCH", location, {
        body: chunk,
        headers: { "Content-Range": `${at}-${at + chunk.length - 1}` },
      });
      assert.equal(patch.status, 202, patch.body.toString("utf8"));
      location = String(patch.headers.location);
    }
    return send("PUT", `${location}?digest=${blob.digest}`);
  }

  it("stores a blob pushed by 16 clients at once exactly once, verified", async () => {
    // A large blob becomes a file, a small one pushed whole a row of the small-blob table.
    for (const [sameRepository, size] of [
      [true, 3 * 1024 * 1024 + 123],
      [false, 3 * 1024 * 1024 + 123],
      [true, 5000],
      [false, 5000],
    ] as const) {
      const blob = randomBlob(size);
      const pushes = Array.from({ length: clients }, (_, i) => {
        const repository = sameRepository ? "race/same" : `race/each-${i}`;
        return i % 2 === 0
          ? send("POST", `/v2/${repository}/blobs/uploads/?digest=${blob.digest}`, {
              body: blob.bytes,
            })
          : chunkedPush(repository, blob, 1 + (i % 4));
      });
      const responses = await Promise.all(pushes);
      for (const response of responses) {
        assert.equal(response.status, 201, response.body.toString("utf8"));
        assert.equal(response.headers["docker-content-digest"], blob.digest);
      }
      const stored = await storedBlob(server.dataDir, blob.digest);
      assert.ok(stored, "the bytes are in the data folder");
      assert.equal(`sha256:${createHash("sha256").update(stored).digest("hex")}`, blob.digest);
      for (let i = 0; i < clients; i += 1) {
        const repository = sameRepository ? "race/same" : `race/each-${i}`;
        const read = await send("GET", `/v2/${repository}/blobs/${blob.digest}`);
        assert.equal(read.status, 200);
        assert.ok(read.body.equals(blob.bytes));
        if (sameRepository) break;
      }
    }
    assert.deepEqual(await readdir(join(server.dataDir, "tmp")), []);
    assert.deepEqual(await readdir(join(server.dataDir, "uploads")), []);
    await assertBlobFilesVerify(server.dataDir);
  });

  it("gives every one of 16 clients writing the same tag a 201, and the tag one complete image", async () => {
    const repository = "race/tag";
    const shared = randomBlob(100_000);
    await pushBlobRaw(target, repository, shared);
    for (let round = 0; round < 5; round += 1) {
      const images = Array.from({ length: clients }, (_, i) => {
        const config = blobOf(
          Buffer.from(JSON.stringify({ round, client: i, salt: randomBytes(8).toString("hex") })),
        );
        const own = randomBlob(1000 + i);
        return { config, own, manifest: imageManifest(config, [shared, own]) };
      });
      // Each client pushes its blobs, then they all write the tag at once.
      await Promise.all(
        images.map(async ({ config, own }) => {
          await pushBlobRaw(target, repository, config);
          await pushBlobRaw(target, repository, own);
        }),
      );
      const writes = await Promise.all(
        images.map(({ manifest }) =>
          send("PUT", `/v2/${repository}/manifests/contested`, {
            body: Buffer.from(manifest.json),
            headers: { "Content-Type": ociManifestType },
          }),
        ),
      );
      writes.forEach((response, i) => {
        assert.equal(response.status, 201, response.body.toString("utf8"));
        assert.equal(response.headers["docker-content-digest"], images[i]?.manifest.digest);
      });
      const tagged = await send("GET", `/v2/${repository}/manifests/contested`);
      assert.equal(tagged.status, 200);
      const winner = images.find(
        ({ manifest }) => manifest.digest === tagged.headers["docker-content-digest"],
      );
      assert.ok(winner, "the tag names one of the manifests written");
      assert.equal(tagged.body.toString("utf8"), winner.manifest.json);
      for (const digest of referencedBlobs(tagged.body, ociManifestType)) {
        const blob = await send("GET", `/v2/${repository}/blobs/${digest}`);
        assert.equal(blob.status, 200, `blob ${digest} of the winning manifest`);
        assert.equal(`sha256:${createHash("sha256").update(blob.body).digest("hex")}`, digest);
      }
      // Every manifest written stays reachable by digest; the tag is listed once.
      for (const { manifest } of images) {
        assert.equal(
          (await send("HEAD", `/v2/${repository}/manifests/${manifest.digest}`)).status,
          200,
        );
      }
      const tags = JSON.parse(
        (await send("GET", `/v2/${repository}/tags/list`)).body.toString("utf8"),
      );
      assert.deepEqual(tags.tags, ["contested"]);
    }
  });

  it("answers pulls of a manifest being deleted with the whole manifest or 404, never part of it", async () => {
    const repository = "race/delete";
    const config = randomBlob(500);
    const layer = randomBlob(2 * 1024 * 1024);
    await pushBlobRaw(target, repository, config);
    await pushBlobRaw(target, repository, layer);
    // A large manifest (annotations padding) so that a torn body would show.
    const manifest = imageManifest(config, [layer], {
      annotations: { padding: randomBytes(512 * 1024).toString("hex") },
    });
    const put = await send("PUT", `/v2/${repository}/manifests/doomed`, {
      body: Buffer.from(manifest.json),
      headers: { "Content-Type": ociManifestType },
    });
    assert.equal(put.status, 201);

    let deleted = false;
    const counts = { before: 0, after: 0, ok: 0, gone: 0 };
    const pull = async (path: string, whole: Buffer, unknownCode: string, worker: number) => {
      let mine = 0;
      let afterDelete = 0;
      const deadline = Date.now() + 30_000;
      while (afterDelete < 5) {
        assert.ok(Date.now() < deadline, `puller ${worker} did not see the delete in time`);
        const seenDeleted = deleted;
        const response = await send("GET", path);
        mine += 1;
        counts.before += seenDeleted ? 0 : 1;
        if (seenDeleted) {
          afterDelete += 1;
          counts.after += 1;
        }
        // A pull sent after the delete was answered must not find the content.
        if (seenDeleted) assert.equal(response.status, 404, `${path} after the delete`);
        if (response.status === 200) {
          assert.equal(response.headers["content-length"], String(whole.length));
          assert.ok(response.body.equals(whole), `${path}: a torn body`);
          counts.ok += 1;
        } else {
          assert.equal(response.status, 404, response.body.toString("utf8"));
          assert.equal(errorCode(response), unknownCode);
          counts.gone += 1;
        }
        if (mine >= 3) started.add(worker);
      }
    };
    const started = new Set<number>();
    const manifestBytes = Buffer.from(manifest.json);
    const pullers = [
      ...Array.from({ length: 6 }, (_, i) =>
        pull(
          `/v2/${repository}/manifests/${i % 2 ? "doomed" : manifest.digest}`,
          manifestBytes,
          "MANIFEST_UNKNOWN",
          i,
        ),
      ),
      ...Array.from({ length: 4 }, (_, i) =>
        pull(`/v2/${repository}/blobs/${layer.digest}`, layer.bytes, "BLOB_UNKNOWN", 6 + i),
      ),
    ];
    const deleter = (async () => {
      await waitFor(() => started.size === pullers.length, "every puller to be pulling", 20_000);
      const [manifestDelete, blobDelete] = await Promise.all([
        send("DELETE", `/v2/${repository}/manifests/${manifest.digest}`),
        send("DELETE", `/v2/${repository}/blobs/${layer.digest}`),
      ]);
      assert.equal(manifestDelete.status, 202);
      assert.equal(blobDelete.status, 202);
      deleted = true;
    })();
    await Promise.all([...pullers, deleter]);
    assert.ok(counts.ok > 0 && counts.after > 0, JSON.stringify(counts));
    // After the delete answered, every pull is a 404.
    const after = await send("GET", `/v2/${repository}/manifests/doomed`);
    assert.equal(errorCode(after), "MANIFEST_UNKNOWN");
    const afterBlob = await send("GET", `/v2/${repository}/blobs/${layer.digest}`);
    assert.equal(errorCode(afterBlob), "BLOB_UNKNOWN");
    await assertBlobFilesVerify(server.dataDir);
  });
});
