// End to end: a replica killed with SIGKILL in the middle of a garbage-collection pass (a
// test hook halts the pass after a number of removals) restarts consistent: every blob a
// repository still serves reads back byte-identical, the kept image is whole, and the next
// pass finishes the work.
// Owns: this file. Helpers: test/support/{meridian-process,registry-http,replication-http}.ts.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { type MeridianProcess, startMeridian } from "../support/meridian-process.ts";
import { randomBlob, type TestBlob } from "../support/oci-fixtures.ts";
import { pushBlob } from "../support/registry-http.ts";
import { getManifest, makeImage, pushImage } from "../support/replication-http.ts";
import { waitFor } from "../support/wait-for.ts";

const repository = "e2e/gc-crash";

async function blobAnswer(
  base: string,
  digest: string,
): Promise<{ status: number; digest?: string }> {
  const response = await fetch(`${base}/v2/${repository}/blobs/${digest}`);
  if (response.status !== 200) {
    await response.arrayBuffer();
    return { status: response.status };
  }
  const bytes = Buffer.from(await response.arrayBuffer());
  return { status: 200, digest: `sha256:${createHash("sha256").update(bytes).digest("hex")}` };
}

async function pass(
  base: string,
): Promise<{ blobs: { count: number }; repositories: { links: number }[] }> {
  const response = await fetch(`${base}/_meridian/admin/gc`, {
    method: "POST",
    body: JSON.stringify({ graceSeconds: 0 }),
  });
  assert.equal(response.status, 200);
  const body = (await response.json()) as {
    regions: { blobs: { count: number }; repositories: { links: number }[] }[];
  };
  return body.regions[0] as { blobs: { count: number }; repositories: { links: number }[] };
}

describe("garbage collection survives a crash mid-pass", () => {
  let dataDir: string | undefined;
  let server: MeridianProcess | undefined;

  after(async () => {
    await server?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it("kill -9 during a pass, restart: consistent, and the next pass completes", {
    timeout: 120_000,
  }, async () => {
    dataDir = await mkdtemp(join(tmpdir(), "meridian-gc-crash-"));
    server = await startMeridian({ dataDir, env: { MERIDIAN_GC_TEST_HALT_AFTER: "50" } });
    const image = makeImage([20_000, 30_000], "kept");
    await pushImage(server.url, repository, "v1", image);
    const orphans: TestBlob[] = [];
    for (let i = 0; i < 40; i += 1) {
      const blob = randomBlob(2_000 + i);
      orphans.push(blob);
      await pushBlob(server.url, repository, blob);
    }

    // The pass unlinks the 40 orphans first, then deletes bytes: it halts once about ten
    // blobs' bytes went (the removals in flight then halt too), and is killed there.
    const halted = pass(server.url).catch(() => undefined);
    const running = server;
    await waitFor(
      () => running.recentOutput().includes("gc test hook: pass halted"),
      "the pass to halt",
      30_000,
    );
    await server.kill9();
    await halted;

    server = await startMeridian({ dataDir });
    // Consistent: a blob the repository serves reads back whole; the rest answer 404.
    let served = 0;
    for (const blob of orphans) {
      const answer = await blobAnswer(server.url, blob.digest);
      assert.ok([200, 404].includes(answer.status), `${blob.digest}: ${answer.status}`);
      if (answer.status === 200) {
        served += 1;
        assert.equal(answer.digest, blob.digest);
      }
    }
    assert.equal(served, 0, "the pass had unlinked every orphan before the crash");
    const before = (await (await fetch(`${server.url}/_meridian/admin/storage`)).json()) as {
      regions: { blobs: number }[];
    };
    // Bytes go a few at a time: some orphans' bytes went before the crash, not all.
    const left = (before.regions[0]?.blobs ?? 0) - 3;
    assert.ok(left > 0 && left < 40, `${left} orphans' bytes left after the crash`);
    for (const blob of [image.config, ...image.layers]) {
      assert.deepEqual(await blobAnswer(server.url, blob.digest), {
        status: 200,
        digest: blob.digest,
      });
    }

    // The next passes finish: nothing of the orphans is left, the image is whole.
    const next = await pass(server.url);
    const links = next.repositories.reduce((sum, r) => sum + r.links, 0);
    assert.equal(links, served);
    const last = await pass(server.url);
    assert.deepEqual([last.blobs.count, last.repositories.length], [0, 0]);
    for (const blob of orphans) {
      assert.equal((await blobAnswer(server.url, blob.digest)).status, 404);
    }
    const storage = (await (await fetch(`${server.url}/_meridian/admin/storage`)).json()) as {
      regions: { blobs: number }[];
    };
    // The image's config and layers, and nothing else.
    assert.equal(storage.regions[0]?.blobs, 3);
    assert.equal((await getManifest(server.url, repository, "v1")).status, 200);
    for (const blob of [image.config, ...image.layers]) {
      assert.deepEqual(await blobAnswer(server.url, blob.digest), {
        status: 200,
        digest: blob.digest,
      });
    }
  });
});
