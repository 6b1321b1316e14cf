import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { it } from "node:test";
import Database from "better-sqlite3";
import { smallBlobRows } from "../../test/support/stored-blobs.ts";
import { withTempFolder } from "../../test/support/temp-folder.ts";
import { digestOf } from "../oci/digest.ts";
import { runBlobStoreSuite } from "./blob-store-suite.ts";
import { FsBlobStore } from "./fs-blob-store.ts";

runBlobStoreSuite("filesystem", async () => {
  const root = await mkdtemp(join(tmpdir(), "meridian-fs-blobs-"));
  return {
    store: await FsBlobStore.open({ root }),
    reopen: () => FsBlobStore.open({ root }),
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
});

it("lists a folder of the older upload layout as idle since it last changed, and deletes it", () =>
  withTempFolder("meridian-fs-blobs-", async (root) => {
    // uploads/<id>/{info.json,data} from an older build: not resumable, so it must expire
    // like any abandoned upload, and its deletion must remove the folder.
    const store = await FsBlobStore.open({ root });
    const leftover = "0c9a7e5d-3b1f-4e2a-8d6c-5f4e3d2c1b0a";
    await mkdir(join(root, "uploads", leftover));
    await writeFile(join(root, "uploads", leftover, "data"), "old bytes");
    const long = new Date(Date.now() - 3 * 24 * 3600 * 1000);
    await utimes(join(root, "uploads", leftover), long, long);
    assert.equal(await store.getUpload(leftover), undefined, "not resumable");
    const listed = (await store.listUploads()).find((u) => u.id === leftover);
    assert.ok((listed?.updatedAt.getTime() ?? Date.now()) <= long.getTime() + 1000);
    await store.deleteUpload(leftover);
    assert.deepEqual(await readdir(join(root, "uploads")), []);
  }));

const sessionId = "6f1d1c2e-0b7a-4c55-9a1e-2b8d6c3f4a10";

it("keeps a small session's bytes in its record, across a reopen, and commits them to the table", () =>
  withTempFolder("meridian-fs-blobs-", async (root) => {
    const store = await FsBlobStore.open({ root });
    await store.createUpload(sessionId, "app");
    await store.appendUpload(sessionId, 0, Readable.from([Buffer.from("abc")]));
    await store.appendUpload(sessionId, 3, Readable.from([Buffer.from("def")]));
    assert.deepEqual(await readdir(join(root, "uploads")), [], "no file for a small session");
    const reopened = await FsBlobStore.open({ root });
    assert.equal((await reopened.getUpload(sessionId))?.size, 6);
    const digest = digestOf(Buffer.from("abcdef"));
    assert.deepEqual(await reopened.commitUpload(sessionId, digest), { size: 6 });
    assert.deepEqual(await smallBlobRows(root), [{ digest, bytes: Buffer.from("abcdef") }]);
    assert.equal(await reopened.getUpload(sessionId), undefined);
  }));

it("moves a session that outgrows a small blob into a file, its bytes whole", () =>
  withTempFolder("meridian-fs-blobs-", async (root) => {
    const store = await FsBlobStore.open({ root });
    await store.createUpload(sessionId, "app");
    const first = randomBytes(40 * 1024);
    const second = randomBytes(40 * 1024);
    await store.appendUpload(sessionId, 0, Readable.from([first]));
    await store.appendUpload(sessionId, first.length, Readable.from([second]));
    assert.deepEqual(await readdir(join(root, "uploads")), [sessionId]);
    const whole = Buffer.concat([first, second]);
    assert.deepEqual(await readFile(join(root, "uploads", sessionId)), whole);
    const reopened = await FsBlobStore.open({ root });
    assert.equal((await reopened.getUpload(sessionId))?.size, whole.length);
    assert.deepEqual(await reopened.commitUpload(sessionId, digestOf(whole)), {
      size: whole.length,
    });
    assert.deepEqual(await readdir(join(root, "uploads")), []);
    assert.ok(await reopened.stat(digestOf(whole)));
  }));

it("counts the record's bytes when a crash cut the move to a file short", () =>
  withTempFolder("meridian-fs-blobs-", async (root) => {
    const store = await FsBlobStore.open({ root });
    await store.createUpload(sessionId, "app");
    await store.appendUpload(sessionId, 0, Readable.from([Buffer.from("abc")]));
    // The file the move had begun, never marked as taking over.
    await writeFile(join(root, "uploads", sessionId), "abc and more that never counted");
    const reopened = await FsBlobStore.open({ root });
    assert.equal((await reopened.getUpload(sessionId))?.size, 3);
    const digest = digestOf(Buffer.from("abc"));
    assert.deepEqual(await reopened.commitUpload(sessionId, digest), { size: 3 });
    // The stale file outlives its record, listed as an idle session for the expiry sweep.
    const listed = await reopened.listUploads();
    assert.deepEqual(
      listed.map((upload) => upload.id),
      [sessionId],
    );
    await reopened.deleteUpload(sessionId);
    assert.deepEqual(await readdir(join(root, "uploads")), [], "the sweep's delete removes it");
  }));

it("lists a spilled session whose file is missing as idle since it started", () =>
  withTempFolder("meridian-fs-blobs-", async (root) => {
    // A session's file gone after it took over from the record (a crash, a hand): the
    // sweep must see the session, and must not take a new one for old.
    const store = await FsBlobStore.open({ root });
    const before = Date.now() - 1000;
    await store.createUpload(sessionId, "app");
    await store.appendUpload(sessionId, 0, Readable.from([randomBytes(70 * 1024)]));
    await rm(join(root, "uploads", sessionId));
    assert.equal(await store.getUpload(sessionId), undefined);
    const listed = (await store.listUploads()).find((u) => u.id === sessionId);
    assert.equal(listed?.size, 0);
    assert.ok((listed?.updatedAt.getTime() ?? 0) >= before, "a new record is fresh");
    await store.deleteUpload(sessionId);
    assert.deepEqual(await store.listUploads(), []);
  }));

it("reads a record table of the release before sessions held bytes: its sessions are in files", () =>
  withTempFolder("meridian-fs-blobs-", async (root) => {
    const old = new Database(join(root, "uploads.db"));
    old.exec(
      "CREATE TABLE upload_sessions (id TEXT PRIMARY KEY, repository TEXT NOT NULL, started_at INTEGER NOT NULL)",
    );
    old.prepare("INSERT INTO upload_sessions VALUES (?, 'app', ?)").run(sessionId, Date.now());
    old.close();
    await mkdir(join(root, "uploads"), { recursive: true });
    await writeFile(join(root, "uploads", sessionId), "from before");
    const store = await FsBlobStore.open({ root });
    assert.equal((await store.getUpload(sessionId))?.size, 11);
    await store.appendUpload(sessionId, 11, Readable.from([Buffer.from("!")]));
    const digest = digestOf(Buffer.from("from before!"));
    assert.deepEqual(await store.commitUpload(sessionId, digest), { size: 12 });
    assert.ok(await store.stat(digest));
  }));
