// Opening an S3 store prints nothing outside the log: the SDK's warning about future Node
// versions would be several lines of plain text among the JSON lines on stderr.
import assert from "node:assert/strict";
import { it } from "node:test";
import { S3BlobStore } from "./s3-blob-store.ts";

it("opens an S3 store without a Node version warning from the SDK", async () => {
  const warnings: string[] = [];
  const onWarning = (warning: Error) => warnings.push(warning.message);
  process.on("warning", onWarning);
  try {
    S3BlobStore.open({ bucket: "meridian", endpoint: "http://127.0.0.1:1" });
    // process.emitWarning reports on the next tick.
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off("warning", onWarning);
  }
  assert.deepEqual(
    warnings.filter((message) => message.includes("AWS SDK")),
    [],
  );
});
