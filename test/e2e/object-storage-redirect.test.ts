// End-to-end: with `storage.blobs.redirect: true` a replica answers blob GETs with a 307 to
// a short-lived signed URL of the object store (an Azure SAS on Azurite, an S3 presigned
// URL on s3rver), the store serves the bytes and the range, a tampered SAS is refused, and
// skopeo pulls through the redirects.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { BlobServiceClient } from "@azure/storage-blob";
import type { BlobStorageInput } from "../../src/config/blob-storage-schema.ts";
import { type MeridianProcess, startMeridian } from "../support/meridian-process.ts";
import { startAzurite, startS3Server } from "../support/object-store-servers.ts";
import { randomBlob } from "../support/oci-fixtures.ts";
import { collectReachableBlobs, OciLayoutBuilder } from "../support/oci-layout.ts";
import { pushBlob } from "../support/registry-http.ts";
import { createSkopeo } from "../support/skopeo.ts";

const TEST_TIMEOUT_MS = 240_000;

interface RedirectBackend {
  name: string;
  blobs: BlobStorageInput;
  env: NodeJS.ProcessEnv;
  /** Where signed URLs point. */
  storeUrl: string;
  /** Whether the store checks signatures (s3rver does not). */
  verifiesSignatures: boolean;
  stop(): Promise<void>;
}

async function azure(): Promise<RedirectBackend> {
  const server = await startAzurite();
  await BlobServiceClient.fromConnectionString(server.connectionString)
    .getContainerClient("registry")
    .create();
  return {
    name: "Azure SAS on Azurite",
    blobs: { driver: "azure", container: "registry", redirect: true, redirectTtlSeconds: 120 },
    env: server.env,
    storeUrl: server.accountUrl,
    verifiesSignatures: true,
    stop: server.stop,
  };
}

async function s3(): Promise<RedirectBackend> {
  const server = await startS3Server("registry");
  return {
    name: "S3 presigned URL on s3rver",
    blobs: {
      driver: "s3",
      bucket: "registry",
      endpoint: server.endpoint,
      forcePathStyle: true,
      redirect: true,
    },
    env: server.env,
    storeUrl: `${server.endpoint}/registry/`,
    verifiesSignatures: false,
    stop: server.stop,
  };
}

for (const open of [azure, s3]) {
  describe(`blob reads redirected to the object store: ${open.name}`, () => {
    let backend: RedirectBackend;
    let workDir = "";
    let replica: MeridianProcess | undefined;

    before(async () => {
      backend = await open();
      workDir = await mkdtemp(join(tmpdir(), "meridian-redirect-e2e-"));
      const configFile = join(workDir, "meridian.yaml");
      await writeFile(configFile, JSON.stringify({ storage: { blobs: backend.blobs } }));
      replica = await startMeridian({ args: ["--config", configFile], env: backend.env });
    });

    after(async () => {
      await replica?.dispose();
      await backend?.stop();
      if (workDir) await rm(workDir, { recursive: true, force: true });
    });

    it("answers a blob GET with 307 to a signed URL that serves the bytes and ranges", {
      timeout: TEST_TIMEOUT_MS,
    }, async () => {
      assert.ok(replica);
      const blob = randomBlob(300_000);
      await pushBlob(replica.url, "e2e/redirect", blob);
      const url = `${replica.url}/v2/e2e/redirect/blobs/${blob.digest}`;
      const answer = await fetch(url, { redirect: "manual" });
      assert.equal(answer.status, 307);
      assert.equal(answer.headers.get("docker-content-digest"), blob.digest);
      const location = answer.headers.get("location") ?? "";
      assert.ok(location.startsWith(backend.storeUrl), location);
      const direct = await fetch(location);
      assert.equal(direct.status, 200);
      assert.ok(Buffer.from(await direct.arrayBuffer()).equals(blob.bytes));
      const ranged = await fetch(url, { headers: { Range: "bytes=1000-1999" } });
      assert.equal(ranged.status, 206);
      assert.ok(Buffer.from(await ranged.arrayBuffer()).equals(blob.bytes.subarray(1000, 2000)));
      // HEAD is answered here, and an unknown blob is still BLOB_UNKNOWN from the registry.
      assert.equal((await fetch(url, { method: "HEAD" })).status, 200);
      const unknown = await fetch(`${replica.url}/v2/e2e/redirect/blobs/${randomBlob(10).digest}`, {
        redirect: "manual",
      });
      assert.equal(unknown.status, 404);
      if (backend.verifiesSignatures) {
        const tampered = location.replace(/sig=[^&]+/, "sig=AAAA");
        assert.equal((await fetch(tampered)).status, 403, "a tampered signature is refused");
      }
    });

    it("lets skopeo pull through the redirects", { timeout: TEST_TIMEOUT_MS }, async () => {
      assert.ok(replica);
      const source = join(workDir, "source");
      const layout = await OciLayoutBuilder.create(source);
      const image = await layout.addImage({
        architecture: "amd64",
        os: "linux",
        layerSizes: [4096, 3 * 1024 * 1024],
      });
      layout.tag(image.manifest, "v1");
      await layout.finish();
      const skopeo = await createSkopeo(join(workDir, "skopeo"));
      const target = `docker://${replica.host}/e2e/pulled:v1`;
      const flags = ["--retry-times", "0", "--preserve-digests"];
      await skopeo.run(["copy", ...flags, "--dest-tls-verify=false", `oci:${source}:v1`, target]);
      const out = join(workDir, "out");
      await skopeo.run(["copy", ...flags, "--src-tls-verify=false", target, `oci:${out}:v1`]);
      const expected = await collectReachableBlobs(source, image.manifest);
      const actual = await collectReachableBlobs(out, image.manifest);
      for (const [digest, bytes] of expected) {
        assert.ok(actual.get(digest)?.equals(bytes), `blob ${digest} after the pull`);
      }
    });
  });
}
