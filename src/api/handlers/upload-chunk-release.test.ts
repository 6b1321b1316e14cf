// A blob pushed over HTTP frees its body's chunks as the store copies them (the store may:
// the parser gave each its own buffer), and the blob stored is still the one pushed.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";
import { after, before, it } from "node:test";
import pino from "pino";
import { openTestRegistry, type RegistryFixture } from "../../registry/registry-test-fixture.ts";
import { releasedChunkBytes } from "../../storage/chunk-release.ts";
import { createApiServer } from "../api-server.ts";

let fixture: RegistryFixture;
let server: ReturnType<typeof createApiServer>;
let base: string;

before(async () => {
  fixture = await openTestRegistry("westus");
  server = createApiServer({ registry: fixture.registry, log: pino({ level: "silent" }) });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
  await fixture.cleanup();
});

const digestOf = (bytes: Buffer) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
/** One socket read's worth: what may stay with the garbage collector (a pooled tail). */
const slack = 64 * 1024;

/** Sends `body` as a blob's bytes. */
function send(method: string, url: string | URL, body: Buffer): Promise<Response> {
  return fetch(url, { method, headers: { "content-type": "application/octet-stream" }, body });
}

async function expectStored(bytes: Buffer): Promise<void> {
  const reply = await fetch(`${base}/v2/app/blobs/${digestOf(bytes)}`);
  assert.equal(reply.status, 200);
  assert.ok(Buffer.from(await reply.arrayBuffer()).equals(bytes));
}

it("frees a monolithic push's chunks", async () => {
  const bytes = randomBytes(2 * 1024 * 1024);
  const before = releasedChunkBytes();
  const reply = await send(
    "POST",
    `${base}/v2/app/blobs/uploads/?digest=${digestOf(bytes)}`,
    bytes,
  );
  assert.equal(reply.status, 201);
  assert.ok(releasedChunkBytes() - before >= bytes.length - slack);
  await expectStored(bytes);
});

it("frees the chunks of a PATCH and of a PUT that carries the last bytes", async () => {
  const first = randomBytes(2 * 1024 * 1024);
  const last = randomBytes(1024 * 1024);
  const whole = Buffer.concat([first, last]);
  const started = await fetch(`${base}/v2/app/blobs/uploads/`, { method: "POST" });
  assert.equal(started.status, 202);
  const location = new URL(started.headers.get("location") ?? "", base);
  const before = releasedChunkBytes();
  const patched = await send("PATCH", location, first);
  assert.equal(patched.status, 202);
  assert.ok(releasedChunkBytes() - before >= first.length - slack);
  const next = new URL(patched.headers.get("location") ?? "", base);
  next.searchParams.set("digest", digestOf(whole));
  const middle = releasedChunkBytes();
  const put = await send("PUT", next, last);
  assert.equal(put.status, 201);
  assert.ok(releasedChunkBytes() - middle >= last.length - slack);
  await expectStored(whole);
});
