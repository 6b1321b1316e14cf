// End-to-end: real replica processes whose blobs live in object storage (Azurite for Azure
// Blob, s3rver for S3, both started on loopback): skopeo pushes and pulls an image with a
// multi-MiB layer, a chunked upload starts on one node and finishes on another over the
// same container, the bytes are in the store and not in the data folder, the collector
// takes unreferenced bytes from the store and only those, and after a restart the image
// still pulls byte for byte.
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { BlobServiceClient } from "@azure/storage-blob";
import type { BlobStorageInput } from "../../src/config/blob-storage-schema.ts";
import { type MeridianProcess, startMeridian } from "../support/meridian-process.ts";
import { startAzurite, startS3Server } from "../support/object-store-servers.ts";
import { randomBlob } from "../support/oci-fixtures.ts";
import {
  type BuiltImage,
  collectReachableBlobs,
  OciLayoutBuilder,
  readLayoutRef,
} from "../support/oci-layout.ts";
import { pushBlob } from "../support/registry-http.ts";
import { createSkopeo, type Skopeo } from "../support/skopeo.ts";

const TEST_TIMEOUT_MS = 240_000;
const MiB = 1024 * 1024;

interface Backend {
  name: string;
  blobs: BlobStorageInput;
  env: NodeJS.ProcessEnv;
  /** Every key in the store under the config's prefix. */
  keys(): Promise<string[]>;
  stop(): Promise<void>;
}

async function azureBackend(): Promise<Backend> {
  const server = await startAzurite();
  const container = BlobServiceClient.fromConnectionString(
    server.connectionString,
  ).getContainerClient("registry");
  await container.create();
  return {
    name: "Azure Blob (Azurite)",
    blobs: { driver: "azure", container: "registry", prefix: "eu/" },
    env: server.env,
    keys: async () => {
      const keys: string[] = [];
      for await (const item of container.listBlobsFlat({ prefix: "eu/" })) keys.push(item.name);
      return keys;
    },
    stop: server.stop,
  };
}

async function s3Backend(): Promise<Backend> {
  const server = await startS3Server("registry");
  const client = new S3Client({
    region: server.region,
    endpoint: server.endpoint,
    forcePathStyle: true,
    credentials: server.credentials,
  });
  return {
    name: "S3 (s3rver)",
    blobs: {
      driver: "s3",
      bucket: "registry",
      region: server.region,
      endpoint: server.endpoint,
      forcePathStyle: true,
      prefix: "eu/",
    },
    env: server.env,
    keys: async () => {
      const listed = await client.send(
        new ListObjectsV2Command({ Bucket: "registry", Prefix: "eu/" }),
      );
      return (listed.Contents ?? []).flatMap((object) => (object.Key ? [object.Key] : []));
    },
    stop: async () => {
      client.destroy();
      await server.stop();
    },
  };
}

for (const open of [azureBackend, s3Backend]) {
  describe(`a replica with its blobs in object storage: ${open.name}`, () => {
    let backend: Backend;
    let workDir = "";
    let configFile = "";
    let sourceDir = "";
    let image: BuiltImage;
    let skopeo: Skopeo;
    let first: MeridianProcess | undefined;
    let second: MeridianProcess | undefined;

    const start = (dataDir?: string) =>
      startMeridian({ args: ["--config", configFile], env: backend.env, dataDir });
    const push = (to: MeridianProcess, repo: string) =>
      skopeo.run([
        "copy",
        "--retry-times",
        "0",
        "--dest-tls-verify=false",
        "--preserve-digests",
        `oci:${sourceDir}:v1`,
        `docker://${to.host}/${repo}`,
      ]);
    /** Pulls into a fresh layout and checks every blob byte for byte. */
    const pullAndCompare = async (from: MeridianProcess, repo: string, out: string) => {
      const outDir = join(workDir, out);
      await skopeo.run([
        "copy",
        "--retry-times",
        "0",
        "--src-tls-verify=false",
        "--preserve-digests",
        `docker://${from.host}/${repo}`,
        `oci:${outDir}:v1`,
      ]);
      assert.equal((await readLayoutRef(outDir, "v1")).digest, image.manifest.digest);
      const expected = await collectReachableBlobs(sourceDir, image.manifest);
      const actual = await collectReachableBlobs(outDir, image.manifest);
      assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort());
      for (const [digest, bytes] of expected) {
        assert.ok(actual.get(digest)?.equals(bytes), `blob ${digest} differs after the pull`);
      }
    };

    before(async () => {
      backend = await open();
      workDir = await mkdtemp(join(tmpdir(), "meridian-object-e2e-"));
      configFile = join(workDir, "meridian.yaml");
      await writeFile(configFile, JSON.stringify({ storage: { blobs: backend.blobs } }));
      sourceDir = join(workDir, "source");
      const layout = await OciLayoutBuilder.create(sourceDir);
      image = await layout.addImage({
        architecture: "amd64",
        os: "linux",
        layerSizes: [2048, 12 * MiB],
      });
      layout.tag(image.manifest, "v1");
      await layout.finish();
      skopeo = await createSkopeo(join(workDir, "skopeo"));
      first = await start();
    });

    after(async () => {
      await first?.dispose();
      await second?.dispose();
      await backend?.stop();
      if (workDir) await rm(workDir, { recursive: true, force: true });
    });

    it("stores what skopeo pushes in the object store and serves it back", {
      timeout: TEST_TIMEOUT_MS,
    }, async () => {
      assert.ok(first);
      await push(first, "e2e/app:v1");
      await pullAndCompare(first, "e2e/app:v1", "pulled-1");
      const keys = await backend.keys();
      for (const layer of image.layers) {
        const hex = layer.digest.slice("sha256:".length);
        assert.ok(keys.includes(`eu/blobs/sha256/${hex}`), `layer ${layer.digest} in the store`);
      }
      const local = await readdir(join(first.dataDir, "blobs")).catch(() => []);
      assert.deepEqual(local, [], "no blob bytes in the data folder");
    });

    it("finishes on a second node a chunked upload the first node started", {
      timeout: TEST_TIMEOUT_MS,
    }, async () => {
      assert.ok(first);
      // A second replica over the same bucket or container: the upload session is there.
      second = await start();
      const blob = randomBlob(9 * MiB + 321);
      const started = await fetch(`${first.url}/v2/e2e/chunked/blobs/uploads/`, {
        method: "POST",
      });
      assert.equal(started.status, 202);
      let location = started.headers.get("location") ?? "";
      const chunk = async (on: MeridianProcess, from: number, to: number) => {
        const response = await fetch(`${on.url}${location}`, {
          method: "PATCH",
          headers: {
            "Content-Type": "application/octet-stream",
            "Content-Range": `${from}-${to - 1}`,
          },
          body: blob.bytes.subarray(from, to),
        });
        assert.equal(response.status, 202, await response.text());
        location = response.headers.get("location") ?? location;
        return response.headers.get("range");
      };
      assert.equal(await chunk(first, 0, 5 * MiB), `0-${5 * MiB - 1}`);
      const status = await fetch(`${second.url}${location}`);
      assert.equal(status.status, 204);
      assert.equal(status.headers.get("range"), `0-${5 * MiB - 1}`, "the second node sees it");
      await chunk(second, 5 * MiB, blob.bytes.length);
      const done = await fetch(`${second.url}${location}?digest=${blob.digest}`, {
        method: "PUT",
      });
      assert.equal(done.status, 201, await done.text());
      const got = await fetch(`${second.url}/v2/e2e/chunked/blobs/${blob.digest}`);
      assert.equal(got.status, 200);
      assert.ok(Buffer.from(await got.arrayBuffer()).equals(blob.bytes));
      const keys = await backend.keys();
      assert.ok(!keys.some((key) => key.startsWith("eu/uploads/")), "the session is gone");
    });

    it("lets the collector take unreferenced bytes from the store, and only those", {
      timeout: TEST_TIMEOUT_MS,
    }, async () => {
      assert.ok(first);
      await second?.dispose();
      second = undefined;
      const orphan = randomBlob(200_000);
      await pushBlob(first.url, "e2e/orphan", orphan);
      const unlinked = await fetch(`${first.url}/v2/e2e/orphan/blobs/${orphan.digest}`, {
        method: "DELETE",
      });
      assert.equal(unlinked.status, 202);
      const key = `eu/blobs/sha256/${orphan.digest.slice("sha256:".length)}`;
      assert.ok((await backend.keys()).includes(key));
      const pass = await fetch(`${first.url}/_meridian/admin/gc`, {
        method: "POST",
        body: JSON.stringify({ graceSeconds: 0 }),
      });
      assert.equal(pass.status, 200, await pass.text());
      const keys = await backend.keys();
      assert.ok(!keys.includes(key), "the unreferenced blob is gone from the store");
      for (const layer of image.layers) {
        const hex = layer.digest.slice("sha256:".length);
        assert.ok(keys.includes(`eu/blobs/sha256/${hex}`), `layer ${layer.digest} is kept`);
      }
    });

    it("still serves the image after a restart", { timeout: TEST_TIMEOUT_MS }, async () => {
      assert.ok(first);
      const dataDir = first.dataDir;
      await first.stop();
      first = await start(dataDir);
      await pullAndCompare(first, "e2e/app:v1", "pulled-2");
    });
  });
}
