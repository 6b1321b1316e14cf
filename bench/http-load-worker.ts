// Worker-thread entry of the load generator: runs one LoadSpec from workerData and posts
// the LoadResult back to the parent.
import { parentPort, workerData } from "node:worker_threads";
import { type LoadSpec, runLoad } from "./http-load.ts";

const result = await runLoad(workerData as LoadSpec);
parentPort?.postMessage(result);
