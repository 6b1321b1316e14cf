import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runMetadataStoreSuite } from "./metadata-store-suite.ts";
import { SqliteMetadataStore } from "./sqlite-metadata-store.ts";

runMetadataStoreSuite("SQLite", async () => {
  const dir = await mkdtemp(join(tmpdir(), "meridian-sqlite-"));
  const path = join(dir, "metadata.db");
  const store = new SqliteMetadataStore({ path });
  return {
    store,
    reopen: async () => new SqliteMetadataStore({ path }),
    cleanup: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
