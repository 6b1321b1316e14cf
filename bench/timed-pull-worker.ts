// Worker-thread entry of the timed pulls (bench/timed-pull.ts): runs each PullJob it is sent
// and posts the outcome (or the error) back with the job's id.
import { parentPort } from "node:worker_threads";
import { type PullJob, timedPull } from "./timed-pull.ts";

parentPort?.on("message", (message: { id: number; job: PullJob }) => {
  timedPull(message.job).then(
    (outcome) => parentPort?.postMessage({ id: message.id, outcome }),
    (error: unknown) =>
      parentPort?.postMessage({
        id: message.id,
        error: error instanceof Error ? error.message : String(error),
      }),
  );
});
parentPort?.postMessage("ready");
