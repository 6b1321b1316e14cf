import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, utimes } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
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

it("reports an upload folder without info.json as idle since the folder last changed", async () => {
  // Such a folder is an upload being created right now (mkdir comes before info.json), or
  // the leftover of a crash in between. The sweep must not take the first for abandoned.
  const root = await mkdtemp(join(tmpdir(), "meridian-fs-blobs-"));
  try {
    const store = await FsBlobStore.open({ root });
    const creating = "6f1d1c2e-0b7a-4c55-9a1e-2b8d6c3f4a10";
    const leftover = "0c9a7e5d-3b1f-4e2a-8d6c-5f4e3d2c1b0a";
    const before = Date.now() - 1000;
    await mkdir(join(root, "uploads", creating));
    await mkdir(join(root, "uploads", leftover));
    const long = new Date(Date.now() - 3 * 24 * 3600 * 1000);
    await utimes(join(root, "uploads", leftover), long, long);
    const listed = new Map((await store.listUploads()).map((u) => [u.id, u]));
    assert.ok((listed.get(creating)?.updatedAt.getTime() ?? 0) >= before, "a new folder is fresh");
    assert.ok((listed.get(leftover)?.updatedAt.getTime() ?? Date.now()) <= long.getTime() + 1000);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
