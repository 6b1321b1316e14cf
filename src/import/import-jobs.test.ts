import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import pino from "pino";
import { OciError } from "../oci/oci-error.ts";
import { openTestRegistry } from "../registry/registry-test-fixture.ts";
import { emptyProgress } from "./image-importer.ts";
import { ImportJobs } from "./import-jobs.ts";

const log = pino({ level: "silent" });

describe("import jobs", () => {
  it("marks a running job that left nothing to resume with (an older version's) failed, after the restart", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "meridian-import-jobs-"));
    const fixture = await openTestRegistry("r1");
    try {
      const id = "0f8fad5b-d9cb-469f-a165-70867728950e";
      await mkdir(join(dataDir, "imports"));
      await writeFile(
        join(dataDir, "imports", `${id}.json`),
        JSON.stringify({
          id,
          state: "running",
          source: "127.0.0.1:1/a:b",
          image: "a:b",
          withReferrers: false,
          force: false,
          createdAt: new Date().toISOString(),
          progress: emptyProgress(),
        }),
      );
      await writeFile(join(dataDir, "imports", `${id}.1234.tmp`), "half a write");
      const jobs = await ImportJobs.open({ registry: fixture.registry, dataDir, log });
      const job = jobs.get(id);
      assert.equal(job?.state, "failed");
      assert.match(job?.reason ?? "", /^interrupted: .*run it again/);
      const stored = JSON.parse(await readFile(join(dataDir, "imports", `${id}.json`), "utf8"));
      assert.equal(stored.state, "failed");
      assert.equal(jobs.list().length, 1);
      await jobs.stop();
    } finally {
      await fixture.cleanup();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it("refuses bad requests before queueing anything", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "meridian-import-jobs-"));
    const fixture = await openTestRegistry("r1");
    try {
      const jobs = await ImportJobs.open({ registry: fixture.registry, dataDir, log });
      const bad = [
        {},
        { source: "127.0.0.1:1/a" },
        { source: "127.0.0.1:1/a:b", username: "u" },
        { source: "127.0.0.1:1/a:b", platform: "linux/amd64", allPlatforms: true },
        { source: "127.0.0.1:1/a:b", platform: "linux" },
        { source: "127.0.0.1:1/a:b", image: "Bad:x" },
      ];
      for (const body of bad) {
        await assert.rejects(
          jobs.submit(body),
          (e: unknown) => e instanceof OciError && e.status === 400,
          JSON.stringify(body),
        );
      }
      assert.equal(jobs.list().length, 0);
      await jobs.stop();
    } finally {
      await fixture.cleanup();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
