// Timed blob pulls in a worker thread, for the global endpoint figures: the endpoint runs on
// the bench process's main thread, so the client must not share its event loop. A pull is
// one raw-socket GET (fast-get.ts), or, in redirect mode, a GET answered 307 followed by a
// GET of its Location (fast-get.ts does not follow redirects); both requests are timed.
// The worker stays up for the whole scenario and runs one job per message, so that the
// main thread can read CPU counters right around each pull.
import net from "node:net";
import { performance } from "node:perf_hooks";
import { Worker } from "node:worker_threads";
import { fastGet } from "./fast-get.ts";

export interface PullJob {
  /** Absolute URL of the blob (regional endpoint or global endpoint). */
  readonly url: string;
  readonly expectBytes: number;
  /** Expect 307 from `url`, then GET the Location. */
  readonly followRedirect: boolean;
}

export interface PullOutcome {
  /** From the first byte sent to the last body byte received, both requests included. */
  readonly ms: number;
  /** Time of the request answered 307 (redirect jobs only). */
  readonly redirectMs?: number;
  /** The Location followed (redirect jobs only). */
  readonly location?: string;
  /** Event-loop utilisation of the worker thread during the pull (0..1). */
  readonly clientUtilization: number;
}

const maxHeadBytes = 64 * 1024;

interface HeadReply {
  readonly status: number;
  readonly head: string;
  readonly body: string;
}

/** One GET on a fresh connection; returns the head and at most 4 KiB of the body. */
function getHead(url: URL, idleTimeoutMs = 30_000): Promise<HeadReply> {
  const path = `${url.pathname}${url.search}`;
  return new Promise((resolve, reject) => {
    let received: Buffer = Buffer.alloc(0);
    let settled = false;
    const finish = (error?: Error): void => {
      if (settled) return;
      settled = true;
      socket.destroy();
      if (error) {
        reject(error);
        return;
      }
      const end = received.indexOf("\r\n\r\n");
      const head = received.toString("latin1", 0, end);
      resolve({
        status: Number(head.slice(9, 12)),
        head,
        body: received.toString("utf8", end + 4, Math.min(received.length, end + 4 + 4096)),
      });
    };
    const socket = net.connect({ host: url.hostname, port: Number(url.port) });
    socket.setNoDelay(true);
    socket.setTimeout(idleTimeoutMs, () =>
      finish(new Error(`GET ${path}: no answer for ${idleTimeoutMs} ms`)),
    );
    socket.on("data", (data: Buffer) => {
      received = Buffer.concat([received, data]);
      const end = received.indexOf("\r\n\r\n");
      if (end < 0) {
        if (received.length > maxHeadBytes) finish(new Error(`GET ${path}: head too large`));
        return;
      }
      const length = /\r\ncontent-length:[ \t]*(\d+)/i.exec(received.toString("latin1", 0, end));
      // A redirect has an empty body; otherwise keep a little of it for the error message.
      const wanted = Math.min(Number(length?.[1] ?? 4096), 4096);
      if (received.length >= end + 4 + wanted) finish();
    });
    socket.on("end", () => {
      if (received.includes("\r\n\r\n")) finish();
      else finish(new Error(`GET ${path}: connection closed before the response head`));
    });
    socket.on("error", (error) => finish(new Error(`GET ${path}: ${error.message}`)));
    socket.on("connect", () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${url.host}\r\nConnection: close\r\n\r\n`);
    });
  });
}

function headerValue(head: string, name: string): string | undefined {
  const match = new RegExp(`\\r\\n${name}:[ \\t]*([^\\r]*)`, "i").exec(head);
  return match?.[1]?.trim();
}

/** Runs one pull in the calling thread; throws on any unexpected answer. */
export async function timedPull(job: PullJob): Promise<PullOutcome> {
  const utilizationStart = performance.eventLoopUtilization();
  const started = performance.now();
  let target = new URL(job.url);
  let redirectMs: number | undefined;
  let location: string | undefined;
  if (job.followRedirect) {
    const first = await getHead(target);
    redirectMs = performance.now() - started;
    location = headerValue(first.head, "location");
    if (first.status !== 307 || location === undefined) {
      throw new Error(
        `GET ${job.url} -> HTTP ${first.status}${location ? ` Location ${location}` : " without Location"}, expected 307 with a Location: ${first.body.replace(/\s+/g, " ").slice(0, 300)}`,
      );
    }
    target = new URL(location, target);
  }
  const path = `${target.pathname}${target.search}`;
  const reply = await fastGet(target, path);
  const ms = performance.now() - started;
  if (reply.status !== 200 || reply.bodyBytes !== job.expectBytes) {
    throw new Error(
      `GET ${target.href}${location ? ` (Location of ${job.url})` : ""} -> HTTP ${reply.status}, ${reply.bodyBytes} body bytes, expected 200 with ${job.expectBytes}: ${reply.errorBody.slice(0, 300)}`,
    );
  }
  return {
    ms,
    ...(redirectMs !== undefined ? { redirectMs } : {}),
    ...(location !== undefined ? { location } : {}),
    clientUtilization: performance.eventLoopUtilization(utilizationStart).utilization,
  };
}

type WorkerAnswer =
  | { readonly id: number; readonly outcome: PullOutcome }
  | { readonly id: number; readonly error: string };

/** A worker thread (bench/timed-pull-worker.ts) running one PullJob at a time. */
export class PullWorker {
  private nextId = 0;
  private readonly pending = new Map<
    number,
    { resolve: (outcome: PullOutcome) => void; reject: (error: Error) => void }
  >();
  private failure: Error | undefined;

  private constructor(private readonly worker: Worker) {
    worker.on("message", (answer: WorkerAnswer | "ready") => {
      if (answer === "ready") return;
      const waiting = this.pending.get(answer.id);
      this.pending.delete(answer.id);
      if ("error" in answer) waiting?.reject(new Error(answer.error));
      else waiting?.resolve(answer.outcome);
    });
    const failAll = (error: Error): void => {
      this.failure ??= error;
      for (const waiting of this.pending.values()) waiting.reject(error);
      this.pending.clear();
    };
    worker.on("error", failAll);
    worker.on("exit", (code) => failAll(new Error(`pull worker exited with code ${code}`)));
  }

  static async start(): Promise<PullWorker> {
    // Loader hooks registered by `--import tsx` do not reach worker threads on Node 20:
    // the worker registers tsx itself, then loads the TypeScript entry (as http-load.ts does).
    const tsxApi = import.meta.resolve("tsx/esm/api");
    const entry = new URL("./timed-pull-worker.ts", import.meta.url).href;
    const bootstrap = `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); });`;
    const worker = new Worker(bootstrap, { eval: true });
    await new Promise<void>((resolve, reject) => {
      const onMessage = (message: unknown): void => {
        if (message !== "ready") return;
        worker.off("message", onMessage);
        worker.off("error", reject);
        resolve();
      };
      worker.on("message", onMessage);
      worker.once("error", reject);
    });
    return new PullWorker(worker);
  }

  pull(job: PullJob): Promise<PullOutcome> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, job });
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}
