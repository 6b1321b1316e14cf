// The read relay against real HTTP servers on loopback: every body framing the replicas
// (or anything in front of them) may use, kept connections, failures before and after the
// answer began, and HTTPS replicas.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import {
  createServer,
  get,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { selfSignedCertificate } from "../../test/support/tls.ts";
import { waitFor } from "../../test/support/wait-for.ts";
import { ReadRelay, type RelayOutcome } from "./read-relay.ts";

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe("read relay", () => {
  let upstream: Server;
  let origin: string;
  let front: Server;
  let frontUrl: string;
  const relay = new ReadRelay({ stallMs: 300 });
  const routes = new Map<string, Handler>();
  const connections = new Set<Socket>();
  /** Connections that had already carried a request when the current one arrived. */
  const usedBefore = new WeakSet<Socket>();
  /** Requests that arrived on a connection that had carried one before. */
  const onKeptConnection = new WeakSet<IncomingMessage>();
  let outcomes: RelayOutcome[] = [];

  before(async () => {
    upstream = createServer((req, res) => {
      if (usedBefore.has(req.socket)) onKeptConnection.add(req);
      usedBefore.add(req.socket);
      const handler = routes.get(req.url ?? "");
      if (handler) handler(req, res);
      else {
        res.writeHead(404, { "Content-Length": "2" });
        res.end("no");
      }
    });
    upstream.on("connection", (socket: Socket) => connections.add(socket));
    origin = await listen(upstream);
    front = createServer((req, res) => {
      relay
        .relay({
          origin,
          method: req.method === "HEAD" ? "HEAD" : "GET",
          path: req.url ?? "/",
          headers: { "x-test": "1" },
          res,
          final: req.headers["x-final"] !== "no",
          answerHeaders: (head) => {
            const out: Record<string, string | string[]> = { ...head.headers, "x-relayed": "yes" };
            delete out["transfer-encoding"];
            delete out.connection;
            delete out["keep-alive"];
            return out;
          },
        })
        .then(
          (outcome) => {
            outcomes.push(outcome);
            if (outcome === "retry") {
              res.writeHead(599, { "Content-Length": "0" });
              res.end();
            }
          },
          () => {
            res.writeHead(502, { "Content-Length": "0" });
            res.end();
          },
        );
    });
    frontUrl = await listen(front);
  });

  after(async () => {
    relay.close();
    front.closeAllConnections();
    upstream.closeAllConnections();
    await new Promise((resolve) => front.close(resolve));
    await new Promise((resolve) => upstream.close(resolve));
  });

  function fetchFront(
    path: string,
    init: { method?: string; headers?: Record<string, string> } = {},
  ): Promise<{
    status: number;
    headers: IncomingMessage["headers"];
    body: Buffer;
    complete: boolean;
  }> {
    return new Promise((resolve, reject) => {
      const req = get(
        `${frontUrl}${path}`,
        { method: init.method ?? "GET", headers: init.headers, agent: false },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks),
              complete: res.complete,
            }),
          );
          res.on("error", () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks),
              complete: false,
            }),
          );
          res.on("aborted", () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks),
              complete: false,
            }),
          );
        },
      );
      req.on("error", reject);
    });
  }

  it("passes a large length-framed body through unchanged and keeps the connection", async () => {
    const body = Buffer.alloc(8 * 1024 * 1024);
    for (let i = 0; i < body.length; i += 4096) body.writeUInt32BE(i, i);
    routes.set("/big", (req, res) => {
      assert.equal(req.headers["x-test"], "1");
      res.writeHead(200, { "Content-Length": String(body.length), Link: ["<a>", "<b>"] });
      res.end(body);
    });
    const before = connections.size;
    for (let round = 0; round < 3; round++) {
      const answer = await fetchFront("/big");
      assert.equal(answer.status, 200);
      assert.equal(answer.headers["x-relayed"], "yes");
      assert.equal(answer.headers.link, "<a>, <b>");
      assert.ok(answer.body.equals(body));
    }
    assert.equal(connections.size - before, 1, "one kept connection for three reads");
  });

  it("relays chunked and close-delimited bodies, HEAD and 404", async () => {
    routes.set("/chunked", (_req, res) => {
      res.writeHead(200, { "Content-Type": "text/plain" });
      res.write("hello ");
      res.end("world");
    });
    routes.set("/closes", (req, res) => {
      req.socket.end("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end");
      res.detachSocket(req.socket);
    });
    const chunked = await fetchFront("/chunked");
    assert.equal(chunked.body.toString(), "hello world");
    const closes = await fetchFront("/closes");
    assert.equal(closes.status, 200);
    assert.equal(closes.body.toString(), "until the end");
    routes.set("/head", (_req, res) => {
      res.writeHead(200, { "Content-Length": "1234", "Docker-Content-Digest": "sha256:x" });
      res.end();
    });
    const head = await fetchFront("/head", { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.headers["content-length"], "1234");
    assert.equal(head.body.length, 0);
    const missing = await fetchFront("/nothing");
    assert.equal(missing.status, 404);
    assert.equal(missing.body.toString(), "no");
  });

  it("relays 204 and 304 without a body and keeps the connection for the next read", async () => {
    routes.set("/empty", (_req, res) => {
      res.writeHead(204, { "X-Request-Id": "abc" });
      res.end();
    });
    routes.set("/unchanged", (req, res) => {
      // The request headers given to the relay reach the replica unchanged.
      res.writeHead(304, { ETag: '"x"', "X-Seen": String(req.headers["x-test"]) });
      res.end();
    });
    const before = connections.size;
    const empty = await fetchFront("/empty");
    assert.deepEqual(
      [empty.status, empty.headers["x-request-id"], empty.body.length],
      [204, "abc", 0],
    );
    const unchanged = await fetchFront("/unchanged");
    assert.deepEqual(
      [
        unchanged.status,
        unchanged.headers.etag,
        unchanged.headers["x-seen"],
        unchanged.body.length,
      ],
      [304, '"x"', "1", 0],
    );
    assert.ok(connections.size - before <= 1, "no connection per empty answer");
  });

  it("asks for a retry on a 5xx unless it is the last replica", async () => {
    routes.set("/broken", (_req, res) => {
      res.writeHead(503, { "Content-Length": "4" });
      res.end("down");
    });
    outcomes = [];
    const retried = await fetchFront("/broken", { headers: { "x-final": "no" } });
    assert.equal(retried.status, 599);
    assert.deepEqual(outcomes, ["retry"]);
    const last = await fetchFront("/broken");
    assert.equal(last.status, 503);
    assert.equal(last.body.toString(), "down");
  });

  it("cuts the client's connection when the replica dies mid-body", async () => {
    routes.set("/dies", (req, res) => {
      res.writeHead(200, { "Content-Length": "1000000" });
      res.write(Buffer.alloc(1000), () => req.socket.destroy());
    });
    outcomes = [];
    const answer = await fetchFront("/dies");
    assert.equal(answer.status, 200);
    assert.equal(answer.complete, false);
    assert.ok(answer.body.length < 1_000_000);
    // Cut, not done: the caller counts the replica as failing.
    await waitFor(async () => outcomes.length === 1, "the relay's outcome");
    assert.deepEqual(outcomes, ["cut"]);
  });

  it("gives up on a replica that never answers: the next one is tried, or 502", async () => {
    routes.set("/silent", () => {
      // Never answers.
    });
    outcomes = [];
    const retried = await fetchFront("/silent", { headers: { "x-final": "no" } });
    assert.equal(retried.status, 599);
    assert.deepEqual(outcomes, ["retry"]);
    const last = await fetchFront("/silent");
    assert.equal(last.status, 502);
  });

  it("keeps a slow client's download going while the replica waits for it", async () => {
    const body = Buffer.alloc(32 * 1024 * 1024, 1);
    routes.set("/slow-client", (_req, res) => {
      res.writeHead(200, { "Content-Length": String(body.length) });
      res.end(body);
    });
    const answer = await new Promise<{ bytes: number; complete: boolean }>((resolve, reject) => {
      get(`${frontUrl}/slow-client`, { agent: false }, (res) => {
        let bytes = 0;
        res.pause();
        // Reads nothing for longer than the relay's stall limit, then everything.
        setTimeout(() => {
          res.on("data", (chunk: Buffer) => {
            bytes += chunk.length;
          });
          res.on("close", () => resolve({ bytes, complete: res.complete }));
          res.resume();
        }, 900);
      }).on("error", reject);
    });
    assert.deepEqual(answer, { bytes: body.length, complete: true });
  });

  it("sends a read again when a kept connection was closed by the replica", async () => {
    routes.set("/small", (_req, res) => {
      res.writeHead(200, { "Content-Length": "2" });
      res.end("ok");
    });
    let dropped = 0;
    // A kept connection the replica gives up on just as the read arrives: no answer on it.
    routes.set("/flaky", (req, res) => {
      if (onKeptConnection.has(req)) {
        dropped += 1;
        req.socket.destroy();
        return;
      }
      res.writeHead(200, { "Content-Length": "2" });
      res.end("ok");
    });
    assert.equal((await fetchFront("/small")).body.toString(), "ok");
    const again = await fetchFront("/flaky");
    assert.equal(again.status, 200);
    assert.equal(again.body.toString(), "ok");
    assert.equal(dropped, 1, "the read went to a kept connection first, then to a new one");
  });
});

describe("read relay to an HTTPS replica", () => {
  it("verifies the replica's certificate and relays its answer", async () => {
    const dir = await mkdtemp(join(tmpdir(), "meridian-relay-tls-"));
    const { cert, key } = await selfSignedCertificate(dir);
    const upstream = createHttpsServer(
      { cert: await readFile(cert), key: await readFile(key) },
      (_req, res) => {
        res.writeHead(200, { "Content-Length": "6" });
        res.end("secure");
      },
    );
    const origin = (await listen(upstream)).replace("http:", "https:");
    const trusting = new ReadRelay({ ca: await readFile(cert) });
    const strict = new ReadRelay();
    const front = createServer((req, res) => {
      const relay = req.url === "/trusting" ? trusting : strict;
      relay
        .relay({
          origin,
          method: "GET",
          path: "/",
          headers: {},
          res,
          final: true,
          answerHeaders: (head) => ({ "content-length": String(head.headers["content-length"]) }),
        })
        .catch(() => {
          res.writeHead(502, { "Content-Length": "0" });
          res.end();
        });
    });
    const frontUrl = await listen(front);
    try {
      const trusted = await fetch(`${frontUrl}/trusting`);
      assert.equal(trusted.status, 200);
      assert.equal(await trusted.text(), "secure");
      // A certificate nobody vouches for is refused, not relayed.
      const refused = await fetch(`${frontUrl}/strict`);
      assert.equal(refused.status, 502);
    } finally {
      trusting.close();
      strict.close();
      front.closeAllConnections();
      upstream.closeAllConnections();
      await new Promise((resolve) => front.close(resolve));
      await new Promise((resolve) => upstream.close(resolve));
      await rm(dir, { recursive: true, force: true });
    }
  });
});
