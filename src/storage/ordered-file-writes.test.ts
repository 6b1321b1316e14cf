import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, open, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { OrderedFileWrites } from "./ordered-file-writes.ts";

it("writes queued buffers in order, those queued during a write together", async () => {
  const dir = await mkdtemp(join(tmpdir(), "meridian-ordered-writes-"));
  const handle = await open(join(dir, "data"), "w");
  try {
    let calls = 0;
    const writev = handle.writev.bind(handle);
    handle.writev = (buffers, position) => {
      calls += 1;
      return writev(buffers, position);
    };
    const reported: number[] = [];
    const writes = new OrderedFileWrites(handle, 10, (position) => reported.push(position));
    const parts = Array.from({ length: 20 }, (_, index) => randomBytes(1000 + index));
    const written = parts.map((part) => writes.write(part));
    await Promise.all(written);
    await writes.settled();
    const whole = Buffer.concat(parts);
    const onDisk = await readFile(join(dir, "data"));
    assert.ok(onDisk.subarray(10).equals(whole));
    // The first goes alone; the 19 queued behind it go 8 at a time.
    assert.equal(calls, 4);
    assert.deepEqual(reported.at(-1), 10 + whole.length);
    assert.deepEqual(
      reported,
      [...reported].sort((a, b) => a - b),
    );
  } finally {
    await handle.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
});

it("fails every queued and later write once one fails", async () => {
  const dir = await mkdtemp(join(tmpdir(), "meridian-ordered-writes-"));
  const handle = await open(join(dir, "data"), "w");
  try {
    handle.writev = () => Promise.reject(new Error("disk full"));
    const writes = new OrderedFileWrites(handle, 0);
    const queued = [writes.write(Buffer.from("a")), writes.write(Buffer.from("b"))];
    for (const write of queued) await assert.rejects(write, /disk full/);
    await assert.rejects(writes.settled(), /disk full/);
    await assert.rejects(writes.write(Buffer.from("c")), /disk full/);
  } finally {
    await handle.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
});
