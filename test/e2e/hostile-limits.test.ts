// Hostile clients that hold connections: a slow-loris that sends its headers a byte a
// second, and uploads whose PATCH stalls mid-body. The server must cut the first off and
// keep answering everyone else, and a stalled upload must never block the requests that
// come after it: a retry of the chunk, a cancel, or the sweeper that expires uploads.
// Every wait is a condition with a deadline.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type MeridianProcess, startMeridian } from "../support/meridian-process.ts";
import { randomBlob } from "../support/oci-fixtures.ts";
import { rawRequest, type Target, targetOf } from "../support/raw-http.ts";
import { waitFor } from "../support/wait-for.ts";

/** The server below gives a request 3 s for its headers (checked every second). */
const headersTimeoutMs = 3_000;
const slowLorisDeadlineMs = 15_000;
/** What a request that should not be held up may take. */
const promptMs = 5_000;
/**
 * More than one write batch of the blob store, so the stalled bytes reach the file, and
 * not a whole number of its slots (of any power-of-two size), so a tail stays unwritten
 * for the client to send again.
 */
const stalledBytes = 4 * 1024 * 1024 + 512 * 1024 + 1000;

describe("clients that hold connections", { concurrency: true }, () => {
  let server: MeridianProcess;
  let expiring: MeridianProcess;
  let target: Target;
  let expiringTarget: Target;
  let configDir: string | undefined;
  const sockets: Socket[] = [];

  before(async () => {
    configDir = await mkdtemp(join(tmpdir(), "meridian-hostile-limits-"));
    // Headers must arrive within 3 s; a silent socket is cut after the default 120 s, so
    // the stalled PATCHes below stay stalled for as long as the tests need.
    const limits = join(configDir, "limits.yaml");
    await writeFile(limits, "limits:\n  headersTimeoutSeconds: 3\n");
    server = await startMeridian({ args: ["--config", limits] });
    target = targetOf(server.url);
    // A second replica whose uploads expire after a second without bytes.
    const ttl = join(configDir, "ttl.yaml");
    await writeFile(ttl, "uploads:\n  ttlSeconds: 1\n  sweepIntervalSeconds: 1\n");
    expiring = await startMeridian({ args: ["--config", ttl] });
    expiringTarget = targetOf(expiring.url);
  });

  after(async () => {
    for (const socket of sockets) socket.destroy();
    await Promise.all([server?.dispose(), expiring?.dispose()]);
    if (configDir) await rm(configDir, { recursive: true, force: true });
  });

  /** A raw connection that records whether the server closed it and what it answered. */
  function open(at: Target) {
    const socket = connect(at.port, at.host);
    sockets.push(socket);
    const state = { closed: false, received: "" };
    socket.on("data", (chunk: Buffer) => {
      state.received += chunk.toString("latin1");
    });
    socket.on("error", () => undefined);
    socket.on("close", () => {
      state.closed = true;
    });
    return { socket, state };
  }

  async function answersPromptly(at: Target, what: string): Promise<void> {
    const started = Date.now();
    const response = await rawRequest(at, { method: "GET", path: "/v2/", timeoutMs: promptMs });
    assert.equal(response.status, 200, what);
    assert.ok(Date.now() - started < promptMs, `${what}: took ${Date.now() - started} ms`);
  }

  async function pushPromptly(at: Target, repository: string): Promise<void> {
    const blob = randomBlob(256 * 1024);
    const response = await rawRequest(at, {
      method: "POST",
      path: `/v2/${repository}/blobs/uploads/?digest=${blob.digest}`,
      body: blob.bytes,
      timeoutMs: promptMs,
    });
    assert.equal(response.status, 201, response.body.toString("utf8"));
  }

  async function startUpload(at: Target, repository: string): Promise<string> {
    const response = await rawRequest(at, {
      method: "POST",
      path: `/v2/${repository}/blobs/uploads/`,
      timeoutMs: promptMs,
    });
    assert.equal(response.status, 202);
    return String(response.headers.location);
  }

  async function uploadSize(at: Target, location: string): Promise<number | undefined> {
    const response = await rawRequest(at, { method: "GET", path: location, timeoutMs: promptMs });
    if (response.status === 404) return undefined;
    assert.equal(response.status, 204);
    const range = /^0-(\d+)$/.exec(String(response.headers.range));
    assert.ok(range, `Range ${response.headers.range}`);
    return Number(range[1]) + 1;
  }

  /**
   * Starts a PATCH that declares 16 MiB, sends a little over one write batch and then
   * stalls; returns once the server has written the first batch (so the append is
   * certainly in progress) with the bytes it holds.
   */
  async function stallPatch(at: Target, location: string) {
    const stalled = open(at);
    const bytes = randomBytes(stalledBytes);
    stalled.socket.write(
      `PATCH ${location} HTTP/1.1\r\nHost: ${at.host}:${at.port}\r\n` +
        "Content-Type: application/octet-stream\r\n" +
        `Content-Length: ${16 * 1024 * 1024}\r\n\r\n`,
    );
    stalled.socket.write(bytes);
    // Settled: what the server took is written and nothing more comes. The size grows in
    // steps (slots go to the file as they fill; the hashing thread starts with the first
    // large write), so one unchanged reading is not enough: eight in a row (400 ms).
    let size = 0;
    let unchanged = 0;
    await waitFor(
      async () => {
        const previous = size;
        size = (await uploadSize(at, location)) ?? 0;
        unchanged = size > 1 && size === previous ? unchanged + 1 : 0;
        return unchanged >= 8;
      },
      "the stalled PATCH's first batch to reach the upload",
      20_000,
      50,
    );
    return { ...stalled, bytes, size };
  }

  it("cuts off a slow-loris client while answering everyone else", async () => {
    const loris = Array.from({ length: 20 }, () => open(target));
    for (const { socket } of loris) {
      socket.write(`GET /v2/ HTTP/1.1\r\nHost: ${target.host}\r\nX-Slow: `);
    }
    const drip = setInterval(() => {
      for (const { socket, state } of loris) if (!state.closed) socket.write("a");
    }, 1000);
    const started = Date.now();
    try {
      let served = 0;
      await waitFor(
        async () => {
          await answersPromptly(target, "a client next to slow-loris connections");
          served += 1;
          if (served % 10 === 0) await pushPromptly(target, "beside/loris");
          return loris.every(({ state }) => state.closed);
        },
        "the server to cut every slow-loris connection off",
        slowLorisDeadlineMs,
        250,
      );
      const elapsed = Date.now() - started;
      assert.ok(
        elapsed >= headersTimeoutMs - 500,
        `cut off after ${elapsed} ms, before the headers timeout`,
      );
      for (const { state } of loris) {
        // Node answers 408 before it closes, or just closes.
        assert.ok(
          state.received === "" || state.received.startsWith("HTTP/1.1 408"),
          state.received,
        );
      }
    } finally {
      clearInterval(drip);
    }
  });

  it("keeps answering other requests, and the same upload's status, while a PATCH stalls mid-body", async () => {
    const location = await startUpload(target, "stall/others");
    const stalled = await stallPatch(target, location);
    await answersPromptly(target, "GET /v2/ beside a stalled PATCH");
    await pushPromptly(target, "stall/others");
    const other = await startUpload(target, "stall/others");
    const chunk = randomBytes(1000);
    const patch = await rawRequest(target, {
      method: "PATCH",
      path: other,
      body: chunk,
      timeoutMs: promptMs,
    });
    assert.equal(patch.status, 202);
    assert.equal(await uploadSize(target, location), stalled.size);
    assert.equal(stalled.state.closed, false);
  });

  it("lets a client retry the chunk of a stalled PATCH on a new connection and finish the upload", async () => {
    const location = await startUpload(target, "stall/retry");
    const stalled = await stallPatch(target, location);
    // The client gives up on the stalled connection and resends from the Range it knows.
    const rest = stalled.bytes.subarray(stalled.size);
    const retry = await rawRequest(target, {
      method: "PATCH",
      path: location,
      headers: { "Content-Range": `${stalled.size}-${stalled.bytes.length - 1}` },
      body: rest,
      timeoutMs: promptMs,
    });
    assert.equal(retry.status, 202, retry.body.toString("utf8"));
    assert.equal(retry.headers.range, `0-${stalled.bytes.length - 1}`);
    const digest = `sha256:${createHash("sha256").update(stalled.bytes).digest("hex")}`;
    const done = await rawRequest(target, {
      method: "PUT",
      path: `${String(retry.headers.location)}?digest=${digest}`,
      timeoutMs: promptMs,
    });
    assert.equal(done.status, 201, done.body.toString("utf8"));
    // The abandoned request's connection is closed rather than left open forever.
    await waitFor(() => stalled.state.closed, "the stalled connection to be closed", promptMs);
  });

  it("cancels a stalled upload at once", async () => {
    const location = await startUpload(target, "stall/cancel");
    const stalled = await stallPatch(target, location);
    const cancel = await rawRequest(target, {
      method: "DELETE",
      path: location,
      timeoutMs: promptMs,
    });
    assert.equal(cancel.status, 204);
    assert.equal(await uploadSize(target, location), undefined);
    await waitFor(() => stalled.state.closed, "the stalled connection to be closed", promptMs);
  });

  it("expires uploads on schedule even while one of them is stalled mid-PATCH", async () => {
    try {
      await expiresBesideAStall();
    } catch (error) {
      throw new Error(`${(error as Error).message}\nserver output:\n${expiring.recentOutput()}`, {
        cause: error,
      });
    }
  });

  async function expiresBesideAStall(): Promise<void> {
    const location = await startUpload(expiringTarget, "stall/expiry");
    const idle: string[] = [];
    for (let i = 0; i < 12; i += 1) idle.push(await startUpload(expiringTarget, "stall/idle"));
    const stalled = open(expiringTarget);
    stalled.socket.write(
      `PATCH ${location} HTTP/1.1\r\nHost: ${expiringTarget.host}\r\n` +
        `Content-Length: ${16 * 1024 * 1024}\r\n\r\n`,
    );
    stalled.socket.write(randomBytes(1000));
    await waitFor(
      async () => {
        for (const upload of idle)
          if ((await uploadSize(expiringTarget, upload)) !== undefined) return false;
        return (await uploadSize(expiringTarget, location)) === undefined;
      },
      "every idle upload, the stalled one too, to expire",
      15_000,
      200,
    );
    await waitFor(
      () => stalled.state.closed,
      "the expired upload's connection to be closed",
      promptMs,
    );
    await answersPromptly(expiringTarget, "after expiry");
  }
});
