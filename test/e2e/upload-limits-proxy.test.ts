// End-to-end: the per-client upload limit counts the real client behind a trusted proxy
// (X-Forwarded-For, as the global endpoint sets it), and ignores the header from anyone
// else. The proxy is played by requests from 127.0.0.2, the only trusted address.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { type ClientRequest, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { stringify } from "yaml";
import { type MeridianProcess, startMeridian } from "../support/meridian-process.ts";
import { waitFor } from "../support/wait-for.ts";

const proxy = "127.0.0.2";
const untrusted = "127.0.0.1";

describe("per-client upload limits behind a trusted proxy", () => {
  let dir: string;
  let server: MeridianProcess;
  const held: ClientRequest[] = [];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "meridian-proxy-limits-"));
    const config = join(dir, "limits.yaml");
    await writeFile(
      config,
      stringify({ limits: { uploadsPerClient: 1, trustedProxies: [`${proxy}/32`] } }),
    );
    server = await startMeridian({ args: ["--config", config] });
  });
  after(async () => {
    for (const req of held) req.destroy();
    await server?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  const port = () => Number(new URL(server.url).port);

  /** A request from `from` claiming `forwardedFor`; resolves with its status once answered. */
  const send = (
    from: string,
    method: string,
    path: string,
    forwardedFor: string | undefined,
    body?: { length: number; sent: Buffer },
  ): { req: ClientRequest; status: Promise<number>; location: Promise<string> } => {
    let location: (value: string) => void = () => undefined;
    const located = new Promise<string>((resolve) => {
      location = resolve;
    });
    const req = request({
      host: "127.0.0.1",
      port: port(),
      localAddress: from,
      method,
      path,
      agent: false,
      headers: {
        ...(forwardedFor ? { "X-Forwarded-For": forwardedFor } : {}),
        ...(body ? { "Content-Length": String(body.length) } : {}),
      },
    });
    const status = new Promise<number>((resolve) => {
      req.on("response", (res) => {
        location(String(res.headers.location ?? ""));
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", () => resolve(-1));
    });
    if (body && body.sent.length < body.length) req.write(body.sent);
    else req.end(body?.sent);
    return { req, status, location: located };
  };

  const session = async (from: string): Promise<string> => {
    const started = send(from, "POST", "/v2/proxied/app/blobs/uploads/", undefined);
    assert.equal(await started.status, 202);
    return started.location;
  };
  /** Holds an upload slot: a PATCH that sends part of its body and waits. */
  const hold = async (from: string, forwardedFor: string) => {
    const upload = send(from, "PATCH", await session(from), forwardedFor, {
      length: 1_000_000,
      sent: Buffer.alloc(1000),
    });
    held.push(upload.req);
  };
  /** The status of a whole small PATCH: 202 when admitted, 429 past the limit. */
  const patch = async (from: string, forwardedFor: string) =>
    send(from, "PATCH", await session(from), forwardedFor, { length: 3, sent: Buffer.from("abc") })
      .status;

  it("gives two clients behind the trusted proxy separate limits", async () => {
    await hold(proxy, "198.51.100.1");
    await waitFor(
      async () => (await patch(proxy, "198.51.100.1")) === 429,
      "the first client's second upload refused",
    );
    assert.equal(await patch(proxy, "198.51.100.2"), 202, "the second client has its own slot");
    // The global endpoint appends the address it saw: only that last hop is believed.
    assert.equal(await patch(proxy, "198.51.100.2, 198.51.100.1"), 429);
    assert.equal(await patch(proxy, "198.51.100.1, 198.51.100.3"), 202);
  });

  it("ignores the X-Forwarded-For of a client that is not a trusted proxy", async () => {
    await hold(untrusted, "203.0.113.1");
    await waitFor(
      async () => (await patch(untrusted, "203.0.113.2")) === 429,
      "a forged X-Forwarded-For does not buy another slot",
    );
    assert.equal(await patch(untrusted, "203.0.113.3"), 429);
  });
});
