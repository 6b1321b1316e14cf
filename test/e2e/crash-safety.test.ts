// End-to-end: what survives a process kill. Uploads resume after a restart, a kill -9 in
// the middle of writes leaves no partial blob or manifest visible and the metadata
// intact, and abandoned uploads expire.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readdir, rm, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import Database from "better-sqlite3";
import { type MeridianProcess, startMeridian } from "../support/meridian-process.ts";
import { imageManifest, ociManifestType, randomBlob } from "../support/oci-fixtures.ts";
import { pushBlob, pushManifest } from "../support/registry-http.ts";
import { waitFor } from "../support/wait-for.ts";

describe("crash safety", () => {
  const cleanup: string[] = [];
  after(async () => {
    for (const dir of cleanup) await rm(dir, { recursive: true, force: true });
  });

  it("resumes a chunked upload after the process was killed", async () => {
    const blob = randomBlob(200_000);
    const first = await startMeridian();
    cleanup.push(first.dataDir);
    const start = await fetch(`${first.url}/v2/resume/app/blobs/uploads/`, { method: "POST" });
    const location = start.headers.get("location") ?? "";
    const patch = await fetch(`${first.url}${location}`, {
      method: "PATCH",
      headers: { "Content-Range": "0-99999" },
      body: blob.bytes.subarray(0, 100_000),
    });
    assert.equal(patch.status, 202);
    await first.kill9();

    const second = await startMeridian({ dataDir: first.dataDir });
    try {
      const status = await fetch(`${second.url}${location}`);
      assert.equal(status.status, 204);
      assert.equal(status.headers.get("range"), "0-99999");
      const rest = await fetch(`${second.url}${location}`, {
        method: "PATCH",
        headers: { "Content-Range": "100000-199999" },
        body: blob.bytes.subarray(100_000),
      });
      assert.equal(rest.status, 202);
      const done = await fetch(`${second.url}${location}?digest=${blob.digest}`, { method: "PUT" });
      assert.equal(done.status, 201, await done.text());
      const get = await fetch(`${second.url}/v2/resume/app/blobs/${blob.digest}`);
      assert.deepEqual(Buffer.from(await get.arrayBuffer()), blob.bytes);
    } finally {
      await second.stop();
    }
  });

  it("shows no partial blob when killed in the middle of a large upload", async () => {
    const server = await startMeridian();
    cleanup.push(server.dataDir);
    const blob = randomBlob(8 * 1024 * 1024);
    // Stream half of the body, then kill the server while it is still receiving.
    const sent = new Promise<void>((resolve) => {
      const req = request(`${server.url}/v2/partial/app/blobs/uploads/?digest=${blob.digest}`, {
        method: "POST",
        headers: { "Content-Length": String(blob.size) },
      });
      req.on("error", () => resolve());
      req.write(blob.bytes.subarray(0, blob.size / 2), () => resolve());
    });
    await sent;
    await waitFor(
      async () => (await readdir(join(server.dataDir, "tmp"))).length > 0,
      "upload in progress",
    );
    await server.kill9();
    const restarted = await startMeridian({ dataDir: server.dataDir });
    try {
      const head = await fetch(`${restarted.url}/v2/partial/app/blobs/${blob.digest}`, {
        method: "HEAD",
      });
      assert.equal(head.status, 404);
      assert.deepEqual(
        await readdir(join(server.dataDir, "tmp")),
        [],
        "temporary files are cleared",
      );
    } finally {
      await restarted.stop();
    }
  });

  it("keeps every acknowledged image whole and the database intact across kill -9 during pushes", async () => {
    const server = await startMeridian();
    cleanup.push(server.dataDir);
    const acknowledged = new Map<
      string,
      { digest: string; blobs: { digest: string; bytes: Buffer }[] }
    >();
    let stop = false;
    const pusher = async (worker: number) => {
      for (let i = 0; !stop; i += 1) {
        const config = randomBlob(100);
        const layer = randomBlob(64 * 1024);
        try {
          await pushBlob(server.url, "crash/app", config);
          await pushBlob(server.url, "crash/app", layer);
          const manifest = imageManifest(config, [layer]);
          const tag = `w${worker}-${i}`;
          const response = await pushManifest(
            server.url,
            "crash/app",
            tag,
            manifest,
            ociManifestType,
          );
          if (response.status === 201)
            acknowledged.set(tag, { digest: manifest.digest, blobs: [config, layer] });
        } catch {
          return; // The server is gone.
        }
      }
    };
    const workers = [0, 1, 2, 3].map(pusher);
    await waitFor(async () => acknowledged.size >= 20, "pushes acknowledged");
    await server.kill9();
    stop = true;
    await Promise.all(workers);

    const db = new Database(join(server.dataDir, "metadata.db"));
    assert.equal(
      (db.pragma("integrity_check") as { integrity_check: string }[])[0]?.integrity_check,
      "ok",
    );
    db.close();
    const restarted = await startMeridian({ dataDir: server.dataDir });
    try {
      const listing = await fetch(`${restarted.url}/v2/crash/app/tags/list`);
      const { tags } = (await listing.json()) as { tags: string[] };
      for (const tag of acknowledged.keys())
        assert.ok(tags.includes(tag), `acknowledged tag ${tag} survived`);
      // Every tag that exists, acknowledged or not, resolves to a whole image.
      for (const tag of tags) {
        const response = await fetch(`${restarted.url}/v2/crash/app/manifests/${tag}`);
        assert.equal(response.status, 200);
        const bytes = Buffer.from(await response.arrayBuffer());
        const manifest = JSON.parse(bytes.toString()) as {
          config: { digest: string };
          layers: { digest: string }[];
        };
        for (const digest of [manifest.config.digest, ...manifest.layers.map((l) => l.digest)]) {
          const blob = await fetch(`${restarted.url}/v2/crash/app/blobs/${digest}`);
          assert.equal(blob.status, 200, `${tag} references ${digest}`);
          const content = Buffer.from(await blob.arrayBuffer());
          assert.equal(`sha256:${createHash("sha256").update(content).digest("hex")}`, digest);
        }
      }
    } finally {
      await restarted.stop();
    }
  });

  it("expires abandoned uploads and removes their files", async () => {
    const config = join(
      await import("node:os").then((os) => os.tmpdir()),
      `meridian-ttl-${process.pid}.yaml`,
    );
    await writeFile(config, "uploads:\n  ttlSeconds: 1\n  sweepIntervalSeconds: 1\n");
    const server: MeridianProcess = await startMeridian({ args: ["--config", config] });
    cleanup.push(server.dataDir, config);
    try {
      const start = await fetch(`${server.url}/v2/abandoned/blobs/uploads/`, { method: "POST" });
      const location = start.headers.get("location") ?? "";
      // Past a small blob, so that the session's bytes are in a file (smaller ones stay in
      // its record, which the expiry removes the same way).
      await fetch(`${server.url}${location}`, {
        method: "PATCH",
        body: Buffer.alloc(100 * 1024, 1),
      });
      assert.equal((await readdir(join(server.dataDir, "uploads"))).length, 1);
      await waitFor(
        async () => (await fetch(`${server.url}${location}`)).status === 404,
        "upload expiry",
        15_000,
      );
      assert.deepEqual(await readdir(join(server.dataDir, "uploads")), []);
    } finally {
      await server.stop();
    }
  });
});
