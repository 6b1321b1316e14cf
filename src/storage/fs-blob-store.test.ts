import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { it } from "node:test";
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

it("lists a folder of the older upload layout as idle since it last changed, and deletes it", async () => {
  // uploads/<id>/{info.json,data} from an older build: not resumable, so it must expire
  // like any abandoned upload, and its deletion must remove the folder.
  const root = await mkdtemp(join(tmpdir(), "meridian-fs-blobs-"));
  try {
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
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

it("lists a session record whose file is missing as idle since it started", async () => {
  // A crash between the record and the file (the record is written first), or a session
  // being created right now: the sweep must see it, and must not take a new one for old.
  const root = await mkdtemp(join(tmpdir(), "meridian-fs-blobs-"));
  try {
    const store = await FsBlobStore.open({ root });
    const id = "6f1d1c2e-0b7a-4c55-9a1e-2b8d6c3f4a10";
    const before = Date.now() - 1000;
    await store.createUpload(id, "app");
    await rm(join(root, "uploads", id));
    assert.equal(await store.getUpload(id), undefined);
    const listed = (await store.listUploads()).find((u) => u.id === id);
    assert.equal(listed?.size, 0);
    assert.ok((listed?.updatedAt.getTime() ?? 0) >= before, "a new record is fresh");
    await store.deleteUpload(id);
    assert.deepEqual(await store.listUploads(), []);
    // A record and its file: one session, across a reopen, with its bytes.
    await store.createUpload(id, "app");
    await store.appendUpload(id, 0, Readable.from([Buffer.from("abc")]));
    const reopened = await FsBlobStore.open({ root });
    assert.equal((await reopened.getUpload(id))?.size, 3);
    assert.deepEqual(await readdir(join(root, "uploads")), [id]);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
