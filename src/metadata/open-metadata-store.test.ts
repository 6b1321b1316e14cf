// Choosing the metadata store from the config: SQLite by default, the PostgreSQL URL from
// env, config or file (env wins), and the password never in a message.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { configSchema } from "../config/config-schema.ts";
import { openMetadataStore, redactUrl } from "./open-metadata-store.ts";
import { SqliteMetadataStore } from "./sqlite-metadata-store.ts";

/** A loopback port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  return typeof address === "object" && address ? address.port : 1;
}

it("defaults to SQLite in the data folder, and checks the PostgreSQL settings", async () => {
  const parsed = configSchema.parse({});
  assert.deepEqual(parsed.storage.metadata, { driver: "sqlite" });
  const bad = configSchema.safeParse({
    storage: { metadata: { driver: "postgres", url: "mysql://x", schema: "Bad-Name" } },
  });
  assert.equal(bad.success, false);
  assert.deepEqual(bad.error?.issues.map((issue) => issue.path.join(".")).sort(), [
    "storage.metadata.schema",
    "storage.metadata.url",
  ]);
  const dir = await mkdtemp(join(tmpdir(), "meridian-open-"));
  try {
    const store = await openMetadataStore({
      config: parsed.storage.metadata,
      dataDir: dir,
      durable: false,
      onListenerError: () => {},
    });
    assert.ok(store instanceof SqliteMetadataStore);
    await store.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

it("takes the PostgreSQL URL from env, config or file, and never shows its password", async () => {
  const dir = await mkdtemp(join(tmpdir(), "meridian-open-"));
  try {
    const open = (config: object, env: NodeJS.ProcessEnv = {}) =>
      openMetadataStore({
        config: { driver: "postgres", ...config },
        dataDir: dir,
        durable: true,
        env,
        onListenerError: () => {},
      });
    await assert.rejects(
      open({}),
      /driver postgres needs url, urlFile or env MERIDIAN_POSTGRES_URL/,
    );
    await assert.rejects(open({ urlFile: join(dir, "missing") }), /urlFile: cannot read/);
    const file = join(dir, "url");
    await writeFile(file, "not a url\n");
    await assert.rejects(open({ urlFile: file }), /must hold a postgres:\/\/ URL/);

    const port = await closedPort();
    const url = (password: string) => `postgres://meridian:${password}@127.0.0.1:${port}/db`;
    await writeFile(file, `${url("from-file")}\n`);
    const failure = async (config: object, env?: NodeJS.ProcessEnv) => {
      const error = await open(config, env).then(
        () => assert.fail("no server listens there"),
        (e: unknown) => e as Error,
      );
      return error.message;
    };
    const fromFile = await failure({ urlFile: file });
    assert.match(
      fromFile,
      /cannot open the PostgreSQL metadata store at postgres:\/\/meridian:\*\*\*@/,
    );
    assert.ok(!fromFile.includes("from-file"));
    const fromConfig = await failure({ url: url("from-config"), urlFile: file });
    assert.ok(!fromConfig.includes("from-config"));
    // The environment wins over both; which URL was used shows in the port it names.
    const other = await closedPort();
    const env = { MERIDIAN_POSTGRES_URL: `postgres://m:from-env@127.0.0.1:${other}/db` };
    const fromEnv = await failure({ url: url("from-config") }, env);
    assert.match(fromEnv, new RegExp(`127\\.0\\.0\\.1:${other}/db`));
    assert.ok(!fromEnv.includes("from-env"));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

it("redacts only the password of a URL", () => {
  assert.equal(redactUrl("postgres://u:p%40ss@h:5432/d?x=1"), "postgres://u:***@h:5432/d?x=1");
  assert.equal(redactUrl("postgres://u@h/d"), "postgres://u@h/d");
  assert.equal(redactUrl("::"), "(an unparsable URL)");
});
