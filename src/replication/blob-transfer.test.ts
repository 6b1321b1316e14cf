// BlobTransfer over a real filesystem blob store, driven by hand the way BlobFetcher drives
// it: segments appended to the upload session, chunks announced as they arrive.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { describe, it } from "node:test";
import { digestOf } from "../oci/digest.ts";
import { BlobIntake } from "../registry/blob-intake.ts";
import { FsBlobStore } from "../storage/fs-blob-store.ts";
import { BlobTransfer } from "./blob-transfer.ts";

/** A sink that collects what it gets and says when it holds at least `n` bytes. */
function collector() {
  const sink = new PassThrough();
  const chunks: Buffer[] = [];
  let length = 0;
  const waiters: { n: number; resolve: () => void }[] = [];
  sink.on("data", (chunk: Buffer) => {
    chunks.push(chunk);
    length += chunk.length;
    for (const waiter of waiters.filter((w) => length >= w.n)) waiter.resolve();
  });
  return {
    sink,
    bytes: () => Buffer.concat(chunks),
    get length() {
      return length;
    },
    holds: (n: number) =>
      length >= n
        ? Promise.resolve()
        : new Promise<void>((resolve) => waiters.push({ n, resolve })),
  };
}

async function withStore(body: (intake: BlobIntake) => Promise<void>): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), "meridian-transfer-"));
  try {
    await body(new BlobIntake(await FsBlobStore.open({ root, durable: false })));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

describe("BlobTransfer", () => {
  it("serves a late reader from the upload file, then live, and the last byte once committed", () =>
    withStore(async (intake) => {
      const bytes = randomBytes(300_000);
      const digest = digestOf(bytes);
      const transfer = new BlobTransfer(digest, intake);
      await intake.resume(digest);
      transfer.begin(bytes.length, 0);
      // The first segment is in the file, the next chunk only in memory.
      const first = bytes.subarray(0, 100_000);
      transfer.receive(first);
      transfer.confirm(await intake.append(digest, 0, Readable.from([first])));
      transfer.receive(bytes.subarray(100_000, 200_000));

      const reader = collector();
      let finalized = false;
      let begun = 0;
      const reading = transfer.sendTo(reader.sink, {
        size: bytes.length,
        finalize: async () => {
          finalized = true;
        },
        begin: () => {
          begun += 1;
        },
      });
      await reader.holds(200_000);
      const rest = bytes.subarray(200_000);
      transfer.receive(rest);
      const appended = await intake.append(
        digest,
        100_000,
        Readable.from([bytes.subarray(100_000, 200_000), rest]),
      );
      transfer.confirm(appended);
      await reader.holds(bytes.length - 1);
      assert.equal(reader.length, bytes.length - 1, "the last byte waits for verification");
      assert.equal(finalized, false);

      await intake.publish(digest);
      transfer.settle();
      await reading;
      assert.equal(finalized, true);
      assert.equal(begun, 1);
      assert.deepEqual(reader.bytes(), bytes);
    }));

  it("fails a reader that got bytes of an attempt that then failed", () =>
    withStore(async (intake) => {
      const bytes = randomBytes(50_000);
      const transfer = new BlobTransfer(digestOf(bytes), intake);
      await intake.resume(digestOf(bytes));
      transfer.begin(bytes.length, 0);
      transfer.receive(bytes.subarray(0, 10_000));
      const reader = collector();
      const reading = transfer.sendTo(reader.sink, {
        size: bytes.length,
        finalize: async () => undefined,
        begin: () => undefined,
      });
      await reader.holds(10_000);
      transfer.attemptFailed(new Error("peer sent bytes that fail the digest"));
      await assert.rejects(reading, /fail the digest/);
    }));

  it("fails every reader when no peer could bring the blob", () =>
    withStore(async (intake) => {
      const transfer = new BlobTransfer(digestOf(Buffer.from("x")), intake);
      const reader = collector();
      let begun = false;
      const reading = transfer.sendTo(reader.sink, {
        size: 1,
        finalize: async () => undefined,
        begin: () => {
          begun = true;
        },
      });
      transfer.settle(new Error("no peer has it"));
      await assert.rejects(reading, /no peer has it/);
      assert.equal(reader.length, 0);
      assert.equal(begun, false, "no head went out: the client can still get an error answer");
    }));
});
