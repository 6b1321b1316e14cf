import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
