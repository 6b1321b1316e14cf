import assert from "node:assert/strict";
import { it } from "node:test";
import { configSchema } from "./config-schema.ts";

const blobsOf = (blobs: unknown) => configSchema.parse({ storage: { blobs } }).storage.blobs;
const problems = (blobs: unknown) => {
  const result = configSchema.safeParse({ storage: { blobs } });
  assert.equal(result.success, false);
  return result.error?.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("\n") ?? "";
};

it("keeps blobs in the data folder unless told otherwise", () => {
  assert.deepEqual(configSchema.parse({}).storage.blobs, { driver: "filesystem" });
});

it("fills the S3 defaults and takes an S3-compatible endpoint", () => {
  assert.deepEqual(blobsOf({ driver: "s3", bucket: "registry-eu" }), {
    driver: "s3",
    bucket: "registry-eu",
    region: "us-east-1",
    forcePathStyle: false,
    prefix: "",
    redirect: false,
    redirectTtlSeconds: 300,
  });
  const minio = blobsOf({
    driver: "s3",
    bucket: "registry",
    endpoint: "http://127.0.0.1:9000",
    forcePathStyle: true,
    prefix: "eu/",
  });
  assert.equal(minio.driver === "s3" && minio.endpoint, "http://127.0.0.1:9000");
});

it("refuses half a key pair, unknown fields and bad names, saying where", () => {
  assert.match(
    problems({ driver: "s3", bucket: "registry", accessKeyId: "AKIA" }),
    /storage\.blobs\.secretAccessKey: accessKeyId and secretAccessKey go together/,
  );
  assert.match(problems({ driver: "s3", bucket: "Not_A_Bucket" }), /storage\.blobs\.bucket/);
  assert.match(problems({ driver: "azure", container: "a--b" }), /storage\.blobs\.container/);
  assert.match(problems({ driver: "azure", container: "blobs", key: "x" }), /Unrecognized key/);
  assert.match(problems({ driver: "gcs" }), /storage\.blobs\.driver/);
  assert.match(problems({ driver: "s3", bucket: "ok-name", prefix: "../up" }), /prefix/);
});
