import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runMetadataStoreSuite } from "./metadata-store-suite.ts";
import { SqliteMetadataStore } from "./sqlite-metadata-store.ts";

runMetadataStoreSuite("SQLite", async () => {
  const dir = await mkdtemp(join(tmpdir(), "meridian-sqlite-"));
  const path = join(dir, "metadata.db");
  // A listener that throws is reported here; the suite checks that nothing else notices.
  const store = new SqliteMetadataStore({ path, onListenerError: () => {} });
  const others: SqliteMetadataStore[] = [];
  return {
    store,
    reopen: async () => new SqliteMetadataStore({ path }),
    another: async () => {
      // Extra stores test merge behaviour, not durability: in memory.
      const other = new SqliteMetadataStore({ path: ":memory:" });
      others.push(other);
      return other;
    },
    cleanup: async () => {
      await store.close();
      for (const other of others) await other.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
