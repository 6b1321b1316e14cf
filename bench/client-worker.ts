// Worker-thread entry of the timed clients (client-thread.ts): runs each job it is sent and
// posts the result (or the error) back with the job's id; "ready" once loaded.
import { parentPort } from "node:worker_threads";
import type { ClientAnswer, ClientJob } from "./client-thread.ts";
import { runLoad } from "./load.ts";
import { timedPull } from "./timed-pull.ts";

parentPort?.on("message", (job: ClientJob) => {
  const run = job.kind === "load" ? runLoad(job.spec) : timedPull(job.spec);
  run.then(
    (result) => parentPort?.postMessage({ id: job.id, result } satisfies ClientAnswer),
    (error: unknown) =>
      parentPort?.postMessage({
        id: job.id,
        error: error instanceof Error ? error.message : String(error),
      } satisfies ClientAnswer),
  );
});
parentPort?.postMessage("ready" satisfies ClientAnswer);
