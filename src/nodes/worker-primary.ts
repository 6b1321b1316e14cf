// The primary process of a replica that runs as several workers (`workers: auto | N`): it
// forks the workers (node:cluster, so they share the listening socket and the kernel
// spreads connections over them), starts the leader first and tells the others where it
// answers, restarts a worker that dies (with backoff), merges every worker's metrics for
// the leader's /metrics, and stops them all on SIGTERM or SIGINT. It serves nothing itself.
import cluster, { type Worker } from "node:cluster";
import type { Logger } from "pino";
import { AggregatorRegistry } from "prom-client";
import { announce } from "../logger.ts";
import {
  isWorkerMessage,
  type LeaderMessage,
  type MetricsMessage,
  type ReadyMessage,
} from "./worker-messages.ts";

export interface WorkerPrimaryOptions {
  count: number;
  log: Logger;
  /** What the "listening" line says besides the URL (data folder, region). */
  describe: Record<string, unknown>;
}

/** Backoff of restarts: 0.5 s, doubling up to 30 s; reset once a worker ran a minute. */
const firstDelayMs = 500;
const maxDelayMs = 30_000;
const healthyAfterMs = 60_000;
/** How long the workers have to stop after SIGTERM before they are killed. */
const stopTimeoutMs = 15_000;

export function runWorkerPrimary(options: WorkerPrimaryOptions): void {
  const { count, log } = options;
  const aggregator = new AggregatorRegistry();
  const slots = new Map<number, { worker: Worker; startedAt: number; delayMs: number }>();
  let leaderUrl: string | undefined;
  let announced = false;
  let stopping = false;
  const ready = new Set<number>();

  const fork = (slot: number, delayMs: number) => {
    const env: Record<string, string> = {
      MERIDIAN_NODE_SLOT: String(slot),
      MERIDIAN_NODE_SLOTS: String(count),
    };
    if (leaderUrl) env.MERIDIAN_LEADER_URL = leaderUrl;
    const worker = cluster.fork(env);
    slots.set(slot, { worker, startedAt: Date.now(), delayMs });
    worker.on("message", (message: unknown) => onMessage(slot, worker, message));
    worker.on("exit", (code, signal) => {
      ready.delete(slot);
      if (slot === 0) leaderUrl = undefined;
      if (stopping) return;
      if (!announced) {
        // It could not start (its one line says why): the replica does not start either.
        stopping = true;
        for (const entry of slots.values()) if (!entry.worker.isDead()) entry.worker.kill();
        log.flush();
        process.exit(code === 0 || code === null ? 1 : code);
      }
      const entry = slots.get(slot);
      const ranLong = entry && Date.now() - entry.startedAt > healthyAfterMs;
      const next = ranLong
        ? firstDelayMs
        : Math.min(maxDelayMs, (entry?.delayMs ?? 0) * 2 || firstDelayMs);
      log.error({ slot, code, signal, restartInMs: next }, "a worker stopped; restarting it");
      setTimeout(() => {
        if (!stopping) fork(slot, next);
      }, next).unref();
    });
  };

  const onMessage = (slot: number, worker: Worker, message: unknown) => {
    if (!isWorkerMessage(message)) return;
    if (message.type === "meridian:ready") {
      const { url, leaderUrl: privateUrl } = message as ReadyMessage;
      ready.add(slot);
      if (slot === 0 && privateUrl) {
        leaderUrl = privateUrl;
        const update: LeaderMessage = { type: "meridian:leader", url: privateUrl };
        for (const { worker: other } of slots.values()) if (other !== worker) other.send(update);
        // The others start once the leader listens: they forward the control plane to it.
        for (let other = 1; other < count; other += 1) if (!slots.has(other)) fork(other, 0);
      }
      if (!announced && ready.size === count) {
        announced = true;
        announce(log, { url, workers: count, ...options.describe }, "listening");
      }
      return;
    }
    if (message.type === "meridian:metrics") {
      const { id } = message as MetricsMessage;
      aggregator.clusterMetrics().then(
        (text) =>
          worker.send({
            type: "meridian:metrics",
            id,
            text,
            contentType: aggregator.contentType,
          } satisfies MetricsMessage),
        (error: unknown) =>
          worker.send({
            type: "meridian:metrics",
            id,
            error: String(error),
          } satisfies MetricsMessage),
      );
    }
  };

  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    announce(log, { signal }, "stopping");
    const alive = [...slots.values()].map((entry) => entry.worker).filter((w) => !w.isDead());
    let left = alive.length;
    if (left === 0) finish();
    for (const worker of alive) {
      worker.once("exit", () => {
        left -= 1;
        if (left === 0) finish();
      });
      worker.process.kill("SIGTERM");
    }
    // A worker that does not finish its shutdown in time is not waited for.
    setTimeout(() => {
      for (const worker of alive) if (!worker.isDead()) worker.process.kill("SIGKILL");
    }, stopTimeoutMs).unref();
  };
  const finish = () => {
    log.flush();
    process.exit(0);
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  fork(0, 0);
}
