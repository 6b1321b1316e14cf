// Real replica processes whose metadata lives in PostgreSQL (storage.metadata.driver:
// postgres, a throwaway server on loopback): skopeo pushes an image, the replica restarts,
// and skopeo pulls the same image back; a second node on the same database serves its
// manifest; the tags are rows in the configured schema, the data folder holds no SQLite
// file, and the log shows the URL without its password. Then two nodes of one region: a
// push on one wakes a feed long-poll waiting on the other.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { type MeridianProcess, startMeridian } from "../support/meridian-process.ts";
import { OciLayoutBuilder, readLayoutRef } from "../support/oci-layout.ts";
import { type PostgresServer, postgresMissing, startPostgres } from "../support/postgres-server.ts";
import { createSkopeo, type Skopeo } from "../support/skopeo.ts";

const missing = postgresMissing();
const password = "not-in-any-log";

describe("a replica on PostgreSQL metadata", { skip: missing, timeout: 240_000 }, () => {
  let server: PostgresServer;
  let workDir = "";
  let dataDir = "";
  let skopeo: Skopeo;
  let replica: MeridianProcess | undefined;
  let url = "";

  before(async () => {
    server = await startPostgres();
    // The test server trusts loopback connections: the password is there to be hidden.
    url = server.url.replace("postgres@", `postgres:${password}@`);
    workDir = await mkdtemp(join(tmpdir(), "meridian-pg-e2e-"));
    dataDir = join(workDir, "data");
    skopeo = await createSkopeo(join(workDir, "skopeo"));
  });

  after(async () => {
    await replica?.stop();
    await server?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  const start = async (metadata: object, env: NodeJS.ProcessEnv = {}) => {
    const config = join(workDir, "meridian.yaml");
    await writeFile(config, JSON.stringify({ storage: { metadata } }));
    return startMeridian({
      dataDir,
      args: ["--config", config],
      env: { MERIDIAN_LOG_LEVEL: "info", ...env },
    });
  };

  it("keeps a pushed image across a restart, with its tags in PostgreSQL", async () => {
    const source = join(workDir, "source");
    const layout = await OciLayoutBuilder.create(source);
    const image = await layout.addImage({
      architecture: "amd64",
      os: "linux",
      layerSizes: [1024, 64 * 1024],
    });
    layout.tag(image.manifest, "v1");
    await layout.finish();

    replica = await start({ driver: "postgres", url, schema: "region_one" });
    const target = `docker://${replica.host}/pg/app:v1`;
    await skopeo.run([
      "copy",
      "--dest-tls-verify=false",
      "--preserve-digests",
      `oci:${source}:v1`,
      target,
    ]);
    const firstLog = replica.recentOutput();
    await replica.stop();
    assert.match(firstLog, /metadata store: PostgreSQL postgres:\/\/postgres:\*\*\*@127\.0\.0\.1/);
    assert.ok(!firstLog.includes(password), "the log never shows the password");
    assert.equal(existsSync(join(dataDir, "metadata.db")), false, "no SQLite file");

    // Restarted with the URL from the environment this time.
    replica = await start(
      { driver: "postgres", schema: "region_one" },
      { MERIDIAN_POSTGRES_URL: url },
    );
    const out = join(workDir, "out");
    const restarted = `docker://${replica.host}/pg/app:v1`;
    await skopeo.run([
      "copy",
      "--src-tls-verify=false",
      "--preserve-digests",
      restarted,
      `oci:${out}:v1`,
    ]);
    assert.equal((await readLayoutRef(out, "v1")).digest, image.manifest.digest);
    assert.ok(!replica.recentOutput().includes(password));

    // A second node of the region, its own data folder, the same database: it lists the
    // tag and serves the manifest the first node took (blobs stay where they were pushed).
    const second = await startMeridian({
      dataDir: join(workDir, "second"),
      args: ["--config", join(workDir, "meridian.yaml")],
      env: { MERIDIAN_POSTGRES_URL: url },
    });
    try {
      const tags = await fetch(`${second.url}/v2/pg/app/tags/list`);
      assert.deepEqual(await tags.json(), { name: "pg/app", tags: ["v1"] });
      const manifest = await fetch(`${second.url}/v2/pg/app/manifests/v1`, {
        headers: { accept: image.manifest.mediaType },
      });
      assert.equal(manifest.status, 200);
      assert.equal(manifest.headers.get("docker-content-digest"), image.manifest.digest);
    } finally {
      await second.dispose();
    }

    const client = new pg.Client({ connectionString: server.url });
    await client.connect();
    try {
      const { rows } = await client.query(
        "SELECT repository, tag, digest FROM region_one.tags WHERE visible",
      );
      assert.deepEqual(rows, [{ repository: "pg/app", tag: "v1", digest: image.manifest.digest }]);
    } finally {
      await client.end();
    }
  });

  it("wakes a feed long-poll on one node when another node commits", async () => {
    const source = join(workDir, "source-two");
    const layout = await OciLayoutBuilder.create(source);
    const image = await layout.addImage({ architecture: "arm64", os: "linux", layerSizes: [512] });
    layout.tag(image.manifest, "v2");
    await layout.finish();
    const secret = "a-replication-secret-for-tests";
    const config = join(workDir, "region-two.yaml");
    await writeFile(
      config,
      JSON.stringify({
        region: "westeurope",
        replication: { secret },
        storage: { metadata: { driver: "postgres", schema: "region_two" } },
      }),
    );
    const env = { MERIDIAN_POSTGRES_URL: url };
    const nodes: MeridianProcess[] = [];
    try {
      for (const name of ["node-a", "node-b"]) {
        nodes.push(
          await startMeridian({ dataDir: join(workDir, name), args: ["--config", config], env }),
        );
      }
      const [a, b] = nodes;
      assert.ok(a && b);
      const feed = async (since: number, wait: number) => {
        const response = await fetch(
          `${b.url}/_meridian/replication/feed?since=${since}&limit=100&wait=${wait}`,
          { headers: { authorization: `Bearer ${secret}` } },
        );
        assert.equal(response.status, 200);
        return (await response.json()) as { head: number; records: { kind: string }[] };
      };
      const { head } = await feed(0, 0);
      // The long-poll waits on node b (up to 25 s: an empty answer means it was not woken)
      // while node a takes the push. (Were the push to commit before the request reached
      // b, the answer would hold the records all the same: the test cannot flake.)
      const waiting = feed(head, 25_000);
      await skopeo.run([
        "copy",
        "--dest-tls-verify=false",
        `oci:${source}:v2`,
        `docker://${a.host}/pg/two:v2`,
      ]);
      const woken = await waiting;
      assert.ok(woken.records.length > 0, "node b's long-poll returned the push's records");
      assert.ok(woken.head > head);
    } finally {
      for (const node of nodes) await node.dispose();
    }
  });
});
