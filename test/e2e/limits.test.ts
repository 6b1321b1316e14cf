// End-to-end: limits that keep slow or greedy clients from holding the server: too many
// concurrent uploads from one client get 429, a body that stalls and a slow-loris header
// trickle lose their sockets, and other clients are served meanwhile.
import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { type ClientRequest, request } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type MeridianProcess, startMeridian } from "../support/meridian-process.ts";
import { waitFor } from "../support/wait-for.ts";

describe("limits for slow and greedy clients", () => {
  let dir: string;
  let server: MeridianProcess;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "meridian-limits-"));
    const config = join(dir, "limits.yaml");
    await writeFile(
      config,
      "limits:\n  headersTimeoutSeconds: 1\n  idleTimeoutSeconds: 1\n  uploadsPerClient: 2\n",
    );
    server = await startMeridian({ args: ["--config", config] });
  });
  after(async () => {
    await server?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  /** A request on a new connection: the 1 s idle limit closes pooled keep-alive sockets. */
  const fresh = (method: string, path: string, body?: string) =>
    new Promise<{ status: number; location: string }>((resolve, reject) => {
      const req = request(`${server.url}${path}`, { method, agent: false }, (res) => {
        res.resume();
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, location: String(res.headers.location ?? "") }),
        );
      });
      req.on("error", reject);
      req.end(body);
    });
  const freshGet = async (path: string) => (await fresh("GET", path)).status;
  const startSession = async (): Promise<string> => {
    const started = await fresh("POST", "/v2/limits/app/blobs/uploads/");
    assert.equal(started.status, 202);
    return started.location;
  };

  /** A PATCH that sends a first piece of its body and then waits. */
  const openUpload = (location: string): { req: ClientRequest; answer: Promise<number> } => {
    const req = request(`${server.url}${location}`, {
      method: "PATCH",
      agent: false,
      headers: { "Content-Length": "1000000", "Content-Type": "application/octet-stream" },
    });
    const answer = new Promise<number>((resolve) => {
      req.on("response", (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", () => resolve(-1));
    });
    req.write(Buffer.alloc(1000));
    return { req, answer };
  };

  it("answers 429 TOOMANYREQUESTS past the concurrent uploads of one client, and frees the slots", async () => {
    const held = [openUpload(await startSession()), openUpload(await startSession())];
    await waitFor(
      async () => {
        const third = openUpload(await startSession());
        const status = await Promise.race([
          third.answer,
          new Promise<number>((r) => setTimeout(() => r(0), 300)),
        ]);
        third.req.destroy();
        return status === 429;
      },
      "the third upload refused",
      10_000,
    );
    for (const upload of held) upload.req.destroy();
    await waitFor(
      async () => {
        const location = await startSession();
        const patch = await fetch(`${server.url}${location}`, { method: "PATCH", body: "abc" });
        return patch.status === 202;
      },
      "slots released",
      10_000,
    );
  });

  it("closes a socket whose body stalls, while serving others", async () => {
    const stalled = openUpload(await startSession());
    assert.equal(await freshGet("/v2/"), 200);
    // The server destroys the stalled socket: the client sees its request fail.
    const outcome = await Promise.race([
      stalled.answer,
      new Promise<number>((_, reject) =>
        setTimeout(() => reject(new Error("stalled socket still open")), 10_000),
      ),
    ]);
    assert.equal(outcome, -1);
  });

  it("cuts off a slow-loris client that trickles its headers", async () => {
    const url = new URL(server.url);
    const socket = connect(Number(url.port), url.hostname);
    await once(socket, "connect");
    socket.write("GET /v2/ HTTP/1.1\r\nHost: x\r\n");
    let cut = false;
    socket.on("close", () => {
      cut = true;
    });
    socket.on("error", () => undefined);
    const trickle = setInterval(() => {
      if (!socket.destroyed) socket.write("X-Slow: 1\r\n");
    }, 200);
    try {
      await waitFor(() => cut, "slow-loris socket closed", 10_000);
      assert.equal(await freshGet("/v2/"), 200);
    } finally {
      clearInterval(trickle);
      socket.destroy();
    }
  });
});
