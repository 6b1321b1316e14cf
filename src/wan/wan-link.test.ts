// Tests for the WAN emulator with real sockets on loopback. Timing assertions are lower
// bounds only (the proxy must add at least the configured distance); upper bounds would
// be flaky on a loaded machine.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { WanLink, type WanLinkOptions } from "./wan-link.ts";
import {
  closed,
  exchange,
  httpGet,
  openSocket,
  roundTrip,
  sha256,
  startEchoServer,
  startHttpServer,
  startServer,
  type TestServer,
  waitUntil,
  withDeadline,
} from "./wan-test-support.ts";

const MiB = 1024 * 1024;
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function link(server: TestServer, options: Partial<WanLinkOptions> = {}): Promise<WanLink> {
  const started = await WanLink.start({
    target: { host: "127.0.0.1", port: server.port },
    ...options,
  });
  cleanups.push(() => started.close());
  return started;
}

async function echoServer(): Promise<TestServer> {
  const server = await startEchoServer();
  cleanups.push(() => server.close());
  return server;
}

describe("WanLink forwarding", () => {
  test("passes 5 MiB unchanged in both directions", async () => {
    const wan = await link(await echoServer(), { rttMs: 10 });
    assert.match(wan.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const payload = randomBytes(5 * MiB);
    const { received } = await withDeadline(exchange(wan.port, payload), 20_000, "echo");
    assert.equal(received.length, payload.length);
    assert.equal(sha256(received), sha256(payload));
    await waitUntil(() => wan.stats().connections === 0, 5_000, "connection to finish");
    const stats = wan.stats();
    assert.equal(stats.bytesForward, payload.length);
    assert.equal(stats.bytesBackward, payload.length);
    assert.equal(stats.connectionsTotal, 1);
    assert.equal(stats.queuedBytes, 0);
  });

  test("stays intact when shaped with a small queue", async () => {
    const wan = await link(await echoServer(), {
      rttMs: 20,
      bytesPerSecond: 40 * MiB,
      maxQueuedBytes: 64 * 1024,
    });
    const payload = randomBytes(3 * MiB);
    const { received } = await withDeadline(exchange(wan.port, payload), 30_000, "echo");
    assert.equal(sha256(received), sha256(payload));
  });

  test("keeps memory bounded when the reader is slow", async () => {
    const payload = randomBytes(16 * MiB);
    const server = await startServer((socket) => socket.end(payload));
    cleanups.push(() => server.close());
    const maxQueuedBytes = 256 * 1024;
    const wan = await link(server, { maxQueuedBytes });
    let peak = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, wan.stats().queuedBytes);
    }, 1);
    try {
      const socket = await openSocket(wan.port);
      const chunks: Buffer[] = [];
      socket.on("data", (chunk: Buffer) => {
        chunks.push(chunk);
        // A slow consumer: take a break after every chunk, so the proxy has to queue.
        socket.pause();
        setTimeout(() => socket.resume(), 1);
      });
      await withDeadline(closed(socket), 60_000, "slow read");
      assert.equal(sha256(Buffer.concat(chunks)), sha256(payload));
    } finally {
      clearInterval(sampler);
    }
    assert.ok(peak > 0, "the proxy should have queued something");
    // One more socket read (up to 64 KiB) can land after the limit is crossed.
    assert.ok(peak <= maxQueuedBytes + 128 * 1024, `peak queue ${peak} bytes`);
  });

  test("resets the client when the target refuses", async () => {
    const unused = await startServer(() => {});
    await unused.close();
    const wan = await link(unused);
    const socket = await openSocket(wan.port);
    await withDeadline(closed(socket), 5_000, "client reset after refused connect");
    await waitUntil(() => wan.stats().connections === 0, 5_000, "connection cleanup");
  });
});

describe("WanLink settings", () => {
  test("rejects nonsense settings", async () => {
    const target = { host: "127.0.0.1", port: 9 };
    await assert.rejects(WanLink.start({ target, rttMs: -1 }), RangeError);
    await assert.rejects(WanLink.start({ target, bytesPerSecond: 0 }), RangeError);
    const wan = await link({ port: 9, close: async () => {} });
    assert.throws(() => wan.setRtt(Number.NaN), RangeError);
    assert.throws(() => wan.setBandwidth(-5), RangeError);
  });
});

describe("WanLink latency", () => {
  test("adds the round-trip time to a request/response exchange", async () => {
    const wan = await link(await echoServer(), { rttMs: 100 });
    const socket = await openSocket(wan.port);
    const first = await withDeadline(roundTrip(socket, Buffer.from("ping")), 5_000, "ping");
    assert.ok(first >= 99, `round trip took ${first} ms`);
    wan.setRtt(200);
    const second = await withDeadline(roundTrip(socket, Buffer.from("ping")), 5_000, "ping");
    assert.ok(second >= 199, `round trip after setRtt(200) took ${second} ms`);
    socket.destroy();
  });

  test("delays an HTTP request through the link", async () => {
    const http = await startHttpServer((_, res) => res.end("ok"));
    cleanups.push(() => http.close());
    const wan = await link(http, { rttMs: 100 });
    const start = performance.now();
    const body = await withDeadline(httpGet(`${wan.url}/`), 5_000, "HTTP request");
    const elapsed = performance.now() - start;
    assert.equal(body, "ok");
    assert.ok(elapsed >= 99, `HTTP request took ${elapsed} ms`);
  });
});

describe("WanLink bandwidth", () => {
  test("paces 2 MiB from target to client at 4 MiB/s", async () => {
    const payload = randomBytes(2 * MiB);
    const server = await startServer((socket) => socket.end(payload));
    cleanups.push(() => server.close());
    const wan = await link(server, { bytesPerSecond: 4 * MiB });
    const { received, elapsedMs } = await withDeadline(
      exchange(wan.port, Buffer.alloc(0)),
      20_000,
      "download",
    );
    assert.equal(sha256(received), sha256(payload));
    assert.ok(elapsedMs >= 450, `2 MiB at 4 MiB/s took ${elapsedMs} ms`);
  });

  test("paces 2 MiB from client to target at 4 MiB/s", async () => {
    const server = await startServer((socket) => {
      const chunks: Buffer[] = [];
      socket.on("data", (chunk: Buffer) => chunks.push(chunk));
      socket.on("end", () => socket.end(sha256(Buffer.concat(chunks))));
    });
    cleanups.push(() => server.close());
    // Start unshaped and shape at run time, as a benchmark changing conditions would.
    const wan = await link(server);
    wan.setBandwidth(4 * MiB);
    const payload = randomBytes(2 * MiB);
    const { received, elapsedMs } = await withDeadline(
      exchange(wan.port, payload),
      20_000,
      "upload",
    );
    assert.equal(received.toString(), sha256(payload));
    assert.ok(elapsedMs >= 450, `2 MiB at 4 MiB/s took ${elapsedMs} ms`);
  });

  test("shares the bandwidth between connections", async () => {
    const payload = randomBytes(1 * MiB);
    const server = await startServer((socket) => socket.end(payload));
    cleanups.push(() => server.close());
    const wan = await link(server, { bytesPerSecond: 4 * MiB });
    const results = await withDeadline(
      Promise.all([exchange(wan.port, Buffer.alloc(0)), exchange(wan.port, Buffer.alloc(0))]),
      20_000,
      "two downloads",
    );
    for (const { received, elapsedMs } of results) {
      assert.equal(sha256(received), sha256(payload));
      // Alone, 1 MiB takes 250 ms; sharing 4 MiB/s fairly, each takes about 500 ms.
      assert.ok(elapsedMs >= 400, `1 MiB of a shared 4 MiB/s took ${elapsedMs} ms`);
    }
  });
});

describe("WanLink cut and heal", () => {
  test("cut resets open and new connections; heal restores forwarding", async () => {
    const wan = await link(await echoServer(), { rttMs: 10 });
    const open = await openSocket(wan.port);
    await withDeadline(roundTrip(open, Buffer.from("hello")), 5_000, "echo before cut");
    assert.equal(wan.stats().connections, 1);

    wan.cut();
    assert.equal(wan.isCut, true);
    await withDeadline(closed(open), 2_000, "open connection closed by cut");
    assert.equal(wan.stats().connections, 0);

    // During the cut a client may still complete the local handshake, but it is reset
    // before any byte gets through.
    const during = await openSocket(wan.port).catch(() => undefined);
    if (during !== undefined) {
      let echoed = false;
      during.on("data", () => {
        echoed = true;
      });
      during.on("error", () => {});
      during.write("anyone there?");
      await withDeadline(closed(during), 2_000, "new connection closed during cut");
      assert.equal(echoed, false);
    }

    wan.heal();
    assert.equal(wan.isCut, false);
    const { received } = await withDeadline(exchange(wan.port, Buffer.from("back")), 5_000, "heal");
    assert.equal(received.toString(), "back");
  });

  test("blackhole resets open connections and holds new ones unanswered until heal", async () => {
    const wan = await link(await echoServer());
    const open = await openSocket(wan.port);
    await withDeadline(roundTrip(open, Buffer.from("hello")), 5_000, "echo before");

    wan.blackhole();
    await withDeadline(closed(open), 2_000, "open connection closed by the blackhole");
    const held = await openSocket(wan.port);
    let echoed = false;
    let gone = false;
    held.on("data", () => {
      echoed = true;
    });
    void closed(held).then(() => {
      gone = true;
    });
    held.write("anyone there?");
    // Nothing comes back and nothing resets the connection: the client can only time out.
    const silent = await withDeadline(roundTrip(held, Buffer.from("?")), 300, "silence").then(
      () => false,
      () => true,
    );
    assert.equal(silent, true);
    assert.equal(echoed, false);
    assert.equal(gone, false);

    wan.heal();
    await withDeadline(closed(held), 2_000, "held connection reset by heal");
    const { received } = await withDeadline(exchange(wan.port, Buffer.from("back")), 5_000, "heal");
    assert.equal(received.toString(), "back");
  });

  test("survives many cuts with traffic in flight", async () => {
    const wan = await link(await echoServer(), { rttMs: 4, bytesPerSecond: 32 * MiB });
    for (let round = 0; round < 15; round++) {
      const before = wan.stats().bytesForward;
      const sockets = await Promise.all([0, 1, 2].map(() => openSocket(wan.port)));
      const closings = sockets.map((socket) => closed(socket));
      for (const socket of sockets) {
        // Keep reading: a socket that never reads (and has nothing left to write) never
        // notices the reset, exactly as over a real network.
        socket.resume();
        socket.write(randomBytes(MiB));
      }
      await waitUntil(() => wan.stats().bytesForward > before, 5_000, "traffic to flow");
      wan.cut();
      await withDeadline(Promise.all(closings), 5_000, `round ${round}: sockets closed`);
      wan.heal();
    }
    assert.equal(wan.stats().connections, 0);
    const { received } = await withDeadline(exchange(wan.port, Buffer.from("ok")), 5_000, "after");
    assert.equal(received.toString(), "ok");
  });
});

describe("WanLink close", () => {
  test("close() leaves nothing that keeps the process alive", async () => {
    const wanLink = new URL("./wan-link.ts", import.meta.url).href;
    const script = `
      import { connect, createServer } from "node:net";
      import { WanLink } from ${JSON.stringify(wanLink)};
      const server = createServer({ allowHalfOpen: true }, (s) => { s.on("error", () => {}); s.pipe(s); });
      await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
      const target = { host: "127.0.0.1", port: server.address().port };
      const link = await WanLink.start({ target, rttMs: 20, bytesPerSecond: 1 << 20 });
      const socket = connect({ host: "127.0.0.1", port: link.port });
      socket.on("error", () => {});
      socket.write(Buffer.alloc(4 << 20));
      await new Promise((resolve) => socket.once("data", resolve));
      await link.close();
      await link.close();
      await new Promise((resolve) => server.close(resolve));
      console.log("closed");
    `;
    const cwd = fileURLToPath(new URL("../..", import.meta.url));
    // The child must exit by itself once everything is closed; the timeout kills it if a
    // handle (socket, server, timer) is left behind.
    const result = await new Promise<{ failure: string | undefined; stdout: string }>((resolve) => {
      const child = execFile(
        process.execPath,
        ["--import", "tsx", "--input-type=module", "-e", script],
        { cwd, timeout: 20_000 },
        (error, stdout, stderr) => {
          const failure = error
            ? `code ${String(error.code)}, signal ${String(error.signal)}: ${stderr}`
            : undefined;
          resolve({ failure, stdout });
        },
      );
      child.stdin?.end();
    });
    assert.equal(result.failure, undefined, "child failed or did not exit");
    assert.equal(result.stdout.trim(), "closed");
  });
});
