// The messages between the primary process of a replica run as workers and its workers
// (over the cluster IPC channel).
//
//   worker -> primary  {type: "meridian:ready", url, leaderUrl?}   listening (the leader
//                       gives the private URL the other workers forward control calls to)
//   primary -> worker  {type: "meridian:leader", url}              the leader's URL now
//   worker -> primary  {type: "meridian:metrics", id}              the leader's /metrics
//   primary -> worker  {type: "meridian:metrics", id, text?, error?} every worker's metrics
//                                                                   merged (prom-client)

export interface ReadyMessage {
  type: "meridian:ready";
  url: string;
  leaderUrl?: string | undefined;
}

export interface LeaderMessage {
  type: "meridian:leader";
  url: string;
}

export interface MetricsMessage {
  type: "meridian:metrics";
  id: number;
  text?: string;
  contentType?: string;
  error?: string;
}

export type WorkerMessage = ReadyMessage | LeaderMessage | MetricsMessage;

export function isWorkerMessage(value: unknown): value is WorkerMessage {
  const type = (value as { type?: unknown } | null)?.type;
  return typeof type === "string" && type.startsWith("meridian:");
}

let nextId = 0;
const waiting = new Map<number, (message: MetricsMessage) => void>();
let listening = false;

/** In a worker: the metrics of every worker of the replica, merged by the primary. */
export function clusterMetrics(timeoutMs = 5_000): Promise<{ text: string; contentType: string }> {
  if (!process.send) return Promise.reject(new Error("not a worker process"));
  if (!listening) {
    listening = true;
    process.on("message", (message: unknown) => {
      if (!isWorkerMessage(message) || message.type !== "meridian:metrics") return;
      waiting.get(message.id)?.(message);
    });
  }
  const id = nextId++;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      waiting.delete(id);
      reject(new Error(`no metrics from the workers in ${timeoutMs} ms`));
    }, timeoutMs);
    waiting.set(id, (message) => {
      clearTimeout(timer);
      waiting.delete(id);
      if (message.text === undefined) reject(new Error(message.error ?? "no metrics"));
      else resolve({ text: message.text, contentType: message.contentType ?? "text/plain" });
    });
    process.send?.({ type: "meridian:metrics", id } satisfies MetricsMessage);
  });
}
