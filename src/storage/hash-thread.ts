// The main thread's end of hash-worker.ts. Hashing 256 MiB costs about 150 ms of CPU on
// the 2-core development machine, as much as receiving it: one hashing thread per process
// takes that off the event loop. The thread starts on first use, holds the process open
// only while it has work, and is started again if it dies (the hashes it held are then
// lost, and their writers fail instead of publishing a wrong digest).
import { Worker } from "node:worker_threads";
import type { Digest, DigestAlgorithm } from "../oci/digest.ts";
import { hashWorkerSource } from "./hash-worker.ts";

interface Reply {
  id: number;
  hex?: string;
  error?: string;
}

interface Waiter {
  resolve: (reply: Reply) => void;
  reject: (error: Error) => void;
}

class HashThread {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly waiting = new Map<number, Waiter>();

  request(message: Record<string, unknown>): Promise<Reply> {
    const worker = this.start();
    const id = this.nextId++;
    return new Promise<Reply>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      if (this.waiting.size === 1) worker.ref();
      worker.postMessage({ ...message, id });
    });
  }

  get running(): boolean {
    return this.worker !== undefined;
  }

  /** Sends a request that expects no answer; dropped when the thread is not running. */
  post(message: Record<string, unknown>): void {
    this.worker?.postMessage(message);
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(hashWorkerSource, {
      eval: true,
      // No TypeScript loader in the thread: its code is plain JavaScript.
      execArgv: [],
      resourceLimits: { maxYoungGenerationSizeMb: 2 },
    });
    worker.unref();
    worker.on("message", (reply: Reply) => {
      const waiter = this.waiting.get(reply.id);
      if (!waiter) return;
      this.waiting.delete(reply.id);
      if (this.waiting.size === 0) worker.unref();
      if (reply.error === undefined) waiter.resolve(reply);
      else waiter.reject(new Error(`hash thread: ${reply.error}`));
    });
    const fail = (error: Error) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      const waiters = [...this.waiting.values()];
      this.waiting.clear();
      for (const waiter of waiters) waiter.reject(error);
    };
    worker.on("error", fail);
    worker.on("exit", (code) => fail(new Error(`hash thread exited with code ${code}`)));
    this.worker = worker;
    return worker;
  }
}

const thread = new HashThread();

/** Whether the hashing thread is running (it costs about 11 MiB): for tests. */
export function hashThreadRunning(): boolean {
  return thread.running;
}
let nextKey = 1;
/** A hash dropped without close() is forgotten by the thread once collected here. */
const forgotten = new FinalizationRegistry<number>((key) => thread.post({ op: "close", key }));

/** A running hash kept by the hashing thread. */
export class RemoteHash {
  private readonly key = nextKey++;
  private readonly opened: Promise<Reply>;

  constructor(readonly algorithm: DigestAlgorithm) {
    this.opened = thread.request({ op: "open", key: this.key, algorithm });
    // A failure here surfaces through the next request on this hash.
    this.opened.catch(() => undefined);
    forgotten.register(this, this.key, this);
  }

  /**
   * Hashes bytes [from, to) of the file at `path`. Requests are applied in the order they
   * are made, so a writer may ask for each range as soon as it is written.
   */
  async absorb(path: string, to: number, from = 0): Promise<void> {
    if (to <= from) return;
    await thread.request({ op: "absorb", key: this.key, path, from, to });
  }

  /** The digest of everything hashed so far; the hash can keep going afterwards. */
  async digest(): Promise<Digest> {
    await this.opened;
    const reply = await thread.request({ op: "digest", key: this.key });
    return `${this.algorithm}:${reply.hex}` as Digest;
  }

  /** Frees the hash in the thread; the object must not be used afterwards. */
  close(): void {
    forgotten.unregister(this);
    thread.post({ op: "close", key: this.key });
  }
}
