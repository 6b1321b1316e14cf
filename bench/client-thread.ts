// The worker thread every timed client runs in (request rates: load.ts, blob pulls:
// timed-pull.ts), so that the client has its own event loop: it never shares one with a
// server in the bench process (the global endpoint), and its busyness says whether it may
// be what limits a figure. One job at a time per message; the main thread reads CPU
// counters right around each.
import { Worker } from "node:worker_threads";
import type { LoadResult, LoadSpec } from "./load.ts";
import type { PullJob, PullOutcome } from "./timed-pull.ts";

/** The messages client-worker.ts answers. */
export type ClientJob =
  | { readonly id: number; readonly kind: "load"; readonly spec: LoadSpec }
  | { readonly id: number; readonly kind: "pull"; readonly spec: PullJob };

export type ClientAnswer =
  | "ready"
  | { readonly id: number; readonly result: LoadResult | PullOutcome }
  | { readonly id: number; readonly error: string };

interface Waiting {
  readonly resolve: (result: LoadResult | PullOutcome) => void;
  readonly reject: (error: Error) => void;
}

export class ClientThread {
  private nextId = 0;
  private readonly pending = new Map<number, Waiting>();
  private failure: Error | undefined;

  private constructor(private readonly worker: Worker) {
    worker.on("message", (answer: ClientAnswer) => {
      if (answer === "ready") return;
      const waiting = this.pending.get(answer.id);
      this.pending.delete(answer.id);
      if ("error" in answer) waiting?.reject(new Error(answer.error));
      else waiting?.resolve(answer.result);
    });
    const failAll = (error: Error): void => {
      this.failure ??= error;
      for (const waiting of this.pending.values()) waiting.reject(error);
      this.pending.clear();
    };
    worker.on("error", failAll);
    worker.on("exit", (code) => failAll(new Error(`client worker exited with code ${code}`)));
  }

  static async start(): Promise<ClientThread> {
    // Loader hooks registered by `--import tsx` do not reach worker threads on Node 20:
    // the worker registers tsx itself, then loads the TypeScript entry.
    const tsxApi = import.meta.resolve("tsx/esm/api");
    const entry = new URL("./client-worker.ts", import.meta.url).href;
    const bootstrap = `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); });`;
    const worker = new Worker(bootstrap, { eval: true });
    // Ready once its modules have loaded, so that no timed job pays for loading them.
    await new Promise<void>((resolve, reject) => {
      worker.once("message", () => resolve());
      worker.once("error", reject);
      worker.once("exit", (code) => reject(new Error(`client worker exited with code ${code}`)));
    });
    return new ClientThread(worker);
  }

  /** Runs one request-rate load (load.ts) in the worker. */
  load(spec: LoadSpec): Promise<LoadResult> {
    return this.send({ id: this.nextId++, kind: "load", spec }) as Promise<LoadResult>;
  }

  /** Runs one timed pull (timed-pull.ts) in the worker. */
  pull(spec: PullJob): Promise<PullOutcome> {
    return this.send({ id: this.nextId++, kind: "pull", spec }) as Promise<PullOutcome>;
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }

  private send(job: ClientJob): Promise<LoadResult | PullOutcome> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending.set(job.id, { resolve, reject });
      this.worker.postMessage(job);
    });
  }
}

/** Starts a client thread, runs `work` with it, and always stops it. */
export async function withClientThread<T>(work: (client: ClientThread) => Promise<T>): Promise<T> {
  const client = await ClientThread.start();
  try {
    return await work(client);
  } finally {
    await client.close();
  }
}
