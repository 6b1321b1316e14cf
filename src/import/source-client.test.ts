// The source client against small registries served in this process on 127.0.0.1 (plain
// HTTP, so each test also goes through the loopback fallback from HTTPS).
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, describe, it } from "node:test";
import { type Digest, digestOf } from "../oci/digest.ts";
import { mediaTypes } from "../oci/media-types.ts";
import { RequestSlots } from "./request-slots.ts";
import { SourceClient } from "./source-client.ts";
import { parseSourceReference } from "./source-reference.ts";
import { retryAfterMs } from "./source-response.ts";

const servers: Server[] = [];
after(() => {
  for (const server of servers) server.closeAllConnections();
  for (const server of servers) server.close();
});

async function serve(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function client(
  host: string,
  options: { sleep?: (ms: number) => void; slots?: RequestSlots; maxAttempts?: number } = {},
) {
  return new SourceClient({
    source: parseSourceReference(`${host}/team/app:v1`),
    insecure: false,
    slots: options.slots ?? new RequestSlots(4),
    signal: new AbortController().signal,
    sleep: async (ms) => options.sleep?.(ms),
    maxAttempts: options.maxAttempts,
  });
}

const manifest = Buffer.from(
  JSON.stringify({ schemaVersion: 2, mediaType: mediaTypes.ociIndex, manifests: [] }),
);

describe("source client", () => {
  it("waits as long as Retry-After says, then gets the manifest", async () => {
    let throttle = 2;
    const host = await serve((req, res) => {
      if (req.url === "/v2/") return res.end();
      if (throttle-- > 0) {
        res.writeHead(429, { "Retry-After": "3" });
        return res.end();
      }
      res.writeHead(200, { "Content-Type": mediaTypes.ociIndex });
      res.end(manifest);
    });
    const waits: number[] = [];
    const source = client(host, { sleep: (ms) => waits.push(ms) });
    await source.connect();
    const got = await source.manifest("v1");
    assert.equal(got.digest, digestOf(manifest));
    assert.equal(got.mediaType, mediaTypes.ociIndex);
    assert.deepEqual(waits, [3000, 3000]);
    assert.equal(source.throttled, 2);
  });

  it("gives up after its attempts with the status in the reason", async () => {
    const host = await serve((req, res) => {
      res.writeHead(req.url === "/v2/" ? 200 : 429);
      res.end();
    });
    const waits: number[] = [];
    const source = client(host, { sleep: (ms) => waits.push(ms), maxAttempts: 3 });
    await source.connect();
    await assert.rejects(source.manifest("v1"), /the source answered 429 for manifest v1/);
    assert.equal(waits.length, 2);
  });

  it("reads Retry-After as seconds or as a date", () => {
    assert.equal(retryAfterMs("2"), 2000);
    assert.equal(retryAfterMs(new Date(10_000).toUTCString(), 4_000), 6000);
    assert.equal(retryAfterMs("soon"), undefined);
    assert.equal(retryAfterMs(null), undefined);
  });

  it("refuses a manifest whose bytes do not match the digest asked for", async () => {
    const host = await serve((req, res) => {
      res.writeHead(200, { "Content-Type": mediaTypes.ociIndex });
      res.end(req.url === "/v2/" ? "" : manifest);
    });
    const source = client(host);
    await source.connect();
    const wrong = `sha256:${"0".repeat(64)}` as Digest;
    await assert.rejects(source.manifest(wrong), /does not match its digest/);
  });

  it("keeps at most four requests in flight to one source", async () => {
    let open = 0;
    let most = 0;
    const held: ServerResponse[] = [];
    const host = await serve((req, res) => {
      if (req.url === "/v2/") return res.end();
      open += 1;
      most = Math.max(most, open);
      res.on("close", () => {
        open -= 1;
      });
      res.writeHead(200, { "Content-Length": "1" });
      held.push(res);
      // The body ends only once four are held: a fifth in flight would show in `most`.
      if (held.length >= 4) for (const r of held.splice(0)) r.end("x");
    });
    const slots = new RequestSlots(4);
    const source = client(host, { slots });
    await source.connect();
    const digest = digestOf(Buffer.from("x"));
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        const blob = await source.blob(digest);
        for await (const _ of blob.body) {
          // drain
        }
      }),
    );
    assert.equal(most, 4);
    assert.equal(slots.inFlight(host), 0);
  });

  it("follows a blob redirect to another origin without the credentials", async () => {
    let seen: string | undefined = "unset";
    const storage = await serve((req, res) => {
      seen = req.headers.authorization;
      res.end("x");
    });
    const host = await serve((req, res) => {
      if (req.url === "/v2/") return res.end();
      if (!req.headers.authorization) {
        res.writeHead(401, { "WWW-Authenticate": 'Basic realm="r"' });
        return res.end();
      }
      res.writeHead(307, { Location: `http://${storage}/bucket/blob` });
      res.end();
    });
    const source = new SourceClient({
      source: parseSourceReference(`${host}/team/app:v1`),
      credentials: { username: "u", password: "p" },
      insecure: false,
      slots: new RequestSlots(),
      signal: new AbortController().signal,
    });
    await source.connect();
    const blob = await source.blob(digestOf(Buffer.from("x")));
    const chunks: Buffer[] = [];
    for await (const chunk of blob.body) chunks.push(chunk as Buffer);
    assert.equal(Buffer.concat(chunks).toString(), "x");
    assert.equal(seen, undefined);
  });

  it("finds referrers through the tag schema when the referrers API is missing", async () => {
    const subject = digestOf(Buffer.from("subject"));
    const referrer = {
      mediaType: mediaTypes.ociManifest,
      digest: digestOf(Buffer.from("r")),
      size: 1,
    };
    const fallback = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: mediaTypes.ociIndex, manifests: [referrer] }),
    );
    const host = await serve((req, res) => {
      if (req.url === "/v2/") return res.end();
      if (req.url === `/v2/team/app/manifests/${subject.replace(":", "-")}`) {
        res.writeHead(200, { "Content-Type": mediaTypes.ociIndex });
        return res.end(fallback);
      }
      res.writeHead(404);
      res.end();
    });
    const source = client(host);
    await source.connect();
    assert.deepEqual(await source.referrers(subject), [referrer]);
  });
});
