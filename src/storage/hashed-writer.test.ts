import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { it } from "node:test";
import { HashedWriter } from "./hashed-writer.ts";
import { uploadPacer } from "./old-space-pacer.ts";

/** Yields `bytes` in chunks of uneven sizes, so that chunks straddle the writer's slots. */
async function* unevenChunks(bytes: Buffer): AsyncGenerator<Buffer> {
  let offset = 0;
  let step = 1;
  while (offset < bytes.length) {
    const size = Math.min(bytes.length - offset, (step * 65_521) % 700_001 || 1);
    yield bytes.subarray(offset, offset + size);
    offset += size;
    step += 1;
  }
}

const sha256 = (bytes: Buffer) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

it("writes and hashes a stream across slots, and goes on from where it stopped", async () => {
  const dir = await mkdtemp(join(tmpdir(), "meridian-hashed-writer-"));
  const path = join(dir, "data");
  const first = randomBytes(3 * 1024 * 1024 + 4321);
  const second = randomBytes(2 * 1024 * 1024 + 7);
  const writer = new HashedWriter("sha256");
  try {
    const options = { sync: true, flushAhead: true };
    assert.equal(await writer.write(unevenChunks(first), path, "w", 0, options), first.length);
    assert.equal(await writer.digest(), sha256(first));
    const written = await writer.write(unevenChunks(second), path, "r+", first.length, options);
    assert.equal(written, second.length);
    const whole = Buffer.concat([first, second]);
    assert.equal(await writer.digest(), sha256(whole));
    assert.ok((await readFile(path)).equals(whole));

    // A hash rebuilt from the file (after a restart) agrees.
    const rebuilt = new HashedWriter("sha256");
    await rebuilt.absorb(path, first.length);
    assert.equal(await rebuilt.digest(), sha256(first));
    rebuilt.close();
  } finally {
    writer.close();
    await rm(dir, { recursive: true, force: true });
  }
});

it("hashes with the digest's algorithm", async () => {
  const dir = await mkdtemp(join(tmpdir(), "meridian-hashed-writer-"));
  const bytes = randomBytes(1024 * 1024 + 3);
  const writer = new HashedWriter("sha512");
  try {
    await writer.write(unevenChunks(bytes), join(dir, "data"), "w", 0, {
      sync: false,
      flushAhead: false,
    });
    const expected = `sha512:${createHash("sha512").update(bytes).digest("hex")}`;
    assert.equal(await writer.digest(), expected);
  } finally {
    writer.close();
    await rm(dir, { recursive: true, force: true });
  }
});

it("fails, and leaves the file a prefix of the stream, when the source fails", async () => {
  const dir = await mkdtemp(join(tmpdir(), "meridian-hashed-writer-"));
  const path = join(dir, "data");
  const bytes = randomBytes(3 * 1024 * 1024);
  async function* failing(): AsyncGenerator<Buffer> {
    yield* unevenChunks(bytes);
    throw new Error("client reset");
  }
  const writer = new HashedWriter("sha256");
  try {
    await assert.rejects(
      writer.write(failing(), path, "w", 0, { sync: false, flushAhead: true }),
      /client reset/,
    );
    const onDisk = await readFile(path);
    assert.ok(bytes.subarray(0, onDisk.length).equals(onDisk));
  } finally {
    writer.close();
    await rm(dir, { recursive: true, force: true });
  }
});

it("hashes a small first write here and keeps one digest as larger writes follow", async () => {
  const dir = await mkdtemp(join(tmpdir(), "meridian-hashed-writer-"));
  const path = join(dir, "data");
  const small = randomBytes(4096);
  const large = randomBytes(2 * 1024 * 1024 + 11);
  const writer = new HashedWriter("sha256");
  try {
    const options = { sync: false, flushAhead: false };
    await writer.write(unevenChunks(small), path, "w", 0, options);
    assert.equal(await writer.digest(), sha256(small));
    await writer.write(unevenChunks(large), path, "r+", small.length, options);
    assert.equal(await writer.digest(), sha256(Buffer.concat([small, large])));
    const empty = new HashedWriter("sha256");
    await empty.write(unevenChunks(Buffer.alloc(0)), join(dir, "empty"), "w", 0, options);
    assert.equal(await empty.digest(), sha256(Buffer.alloc(0)));
  } finally {
    writer.close();
    await rm(dir, { recursive: true, force: true });
  }
});

/** Yields `bytes` in 64 KiB chunks, as a socket delivers them. */
async function* socketChunks(bytes: Buffer): AsyncGenerator<Buffer> {
  for (let offset = 0; offset < bytes.length; offset += 65_536) {
    yield bytes.subarray(offset, offset + 65_536);
  }
}

it("hashes streams that end on a slot boundary or on a hash request's", async () => {
  // Slots are 128 KiB and the hashing thread is asked every 1 MiB: a stream that ends on
  // either boundary has a tail no slot's submit requested.
  const dir = await mkdtemp(join(tmpdir(), "meridian-hashed-writer-"));
  const kib = 1024;
  const sizes = [128 * kib, 3 * 128 * kib, 1024 * kib, 1152 * kib, 2048 * kib + 1];
  try {
    for (const size of sizes) {
      for (const chunks of [socketChunks, unevenChunks]) {
        const bytes = randomBytes(size);
        const writer = new HashedWriter("sha256");
        try {
          const path = join(dir, `data-${size}`);
          await writer.write(chunks(bytes), path, "w", 0, { sync: false, flushAhead: false });
          assert.equal(await writer.digest(), sha256(bytes), `${size} bytes`);
          // A next append (a chunked upload's next PATCH) goes on from there.
          const more = randomBytes(size);
          await writer.write(chunks(more), path, "r+", size, { sync: true, flushAhead: true });
          const whole = Buffer.concat([bytes, more]);
          assert.equal(await writer.digest(), sha256(whole), `${size} + ${size} bytes`);
          assert.ok((await readFile(path)).equals(whole));
        } finally {
          writer.close();
        }
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

it("frees the chunks of an owned source once copied, and leaves anyone else's intact", async () => {
  const dir = await mkdtemp(join(tmpdir(), "meridian-hashed-writer-"));
  const bytes = randomBytes(3 * 1024 * 1024 + 11);
  // Each chunk a buffer of its own, as Node's HTTP parser hands a request body over.
  const chunks = () =>
    Array.from({ length: Math.ceil(bytes.length / 65_536) }, (_, index) => {
      const piece = bytes.subarray(index * 65_536, (index + 1) * 65_536);
      const chunk = Buffer.allocUnsafeSlow(piece.length);
      piece.copy(chunk);
      return chunk;
    });
  const options = { sync: false, flushAhead: false };
  try {
    const owned = chunks();
    const writer = new HashedWriter("sha256");
    await writer.write(Readable.from(owned), join(dir, "owned"), "w", 0, {
      ...options,
      releaseChunks: true,
    });
    assert.equal(await writer.digest(), sha256(bytes));
    writer.close();
    assert.ok((await readFile(join(dir, "owned"))).equals(bytes));
    assert.ok(
      owned.every((chunk) => chunk.length === 0),
      "every chunk was freed",
    );

    const kept = chunks();
    const other = new HashedWriter("sha256");
    await other.write(Readable.from(kept), join(dir, "kept"), "w", 0, options);
    other.close();
    assert.ok(Buffer.concat(kept).equals(bytes), "chunks not owned are left as they were");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

it("collects the heap while it writes once the heap has grown", async () => {
  const dir = await mkdtemp(join(tmpdir(), "meridian-hashed-writer-"));
  const slice = Buffer.alloc(1024 * 1024, 7);
  const source = async function* (mib: number) {
    for (let index = 0; index < mib; index += 1) yield slice;
  };
  const writer = new HashedWriter("sha256");
  const options = { sync: false, flushAhead: false };
  try {
    await writer.write(source(64), join(dir, "data"), "w", 0, options);
    const before = uploadPacer.collections;
    // Live objects well past the pacer's growth, so that no collection could hide them.
    const retained = Array.from({ length: 1_000_000 }, (_, index) => ({ index }));
    await writer.write(source(64), join(dir, "data"), "r+", 64 * 1024 * 1024, options);
    assert.ok(uploadPacer.collections > before, "the writes let the pacer check and collect");
    assert.equal(retained.length, 1_000_000);
  } finally {
    writer.close();
    await rm(dir, { recursive: true, force: true });
  }
});
