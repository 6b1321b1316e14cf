// What the bench reads from and does to the machine: CPU time of a server's process tree (to
// tell whether the server or the client was saturated) and of single threads, resident
// memory (VmRSS samples, VmHWM peak), the load average, and the page-cache flush that
// starts every scenario.
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { performance } from "node:perf_hooks";

const clockTicksPerSecond = 100;

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/** The pid followed by all its descendants (via /proc/<pid>/task/<tid>/children). */
function processTree(pid: number): number[] {
  const result: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const current = queue.shift() as number;
    result.push(current);
    const tasks = readOrEmpty(`/proc/${current}/task/${current}/children`).trim();
    for (const child of tasks.split(/\s+/)) {
      if (child !== "") queue.push(Number(child));
    }
  }
  return result;
}

/** User + system CPU seconds consumed so far by the process tree. */
export function cpuSeconds(pid: number): number {
  let ticks = 0;
  for (const member of processTree(pid)) {
    const stat = readOrEmpty(`/proc/${member}/stat`);
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    ticks += Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
  }
  return ticks / clockTicksPerSecond;
}

function statusKiB(pid: number, key: "VmRSS" | "VmHWM"): number {
  const match = new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(readOrEmpty(`/proc/${pid}/status`));
  return match?.[1] ? Number(match[1]) : 0;
}

/** Current resident set of the process tree, MiB. */
export function rssMiB(pid: number): number {
  let kib = 0;
  for (const member of processTree(pid)) kib += statusKiB(member, "VmRSS");
  return kib / 1024;
}

/** Peak resident set (VmHWM) of the process itself, MiB. */
export function peakRssMiB(pid: number): number {
  return statusKiB(pid, "VmHWM") / 1024;
}

/** Resets VmHWM to the current RSS (`echo 5 > clear_refs`); false if not permitted. */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/** Samples the tree's RSS every `intervalMs` until stopped; returns the maximum seen. */
export function sampleRss(pid: number, intervalMs = 20): { stop(): number } {
  let max = rssMiB(pid);
  const timer = setInterval(() => {
    max = Math.max(max, rssMiB(pid));
  }, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(max, rssMiB(pid));
    },
  };
}

/** CPU used while `work` runs, as % of one core: by the server's process tree and by this process. */
export async function withServerCpu<T>(
  pid: number,
  work: () => Promise<T>,
): Promise<{ result: T; serverCpuPercent: number; clientCpuPercent: number }> {
  const cpuBefore = cpuSeconds(pid);
  const clientBefore = process.cpuUsage();
  const started = process.hrtime.bigint();
  const result = await work();
  const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  const client = process.cpuUsage(clientBefore);
  const serverCpuPercent = ((cpuSeconds(pid) - cpuBefore) / wallSeconds) * 100;
  const clientCpuPercent = ((client.user + client.system) / 1e6 / wallSeconds) * 100;
  return { result, serverCpuPercent, clientCpuPercent };
}

/**
 * CPU time and run-queue wait of one thread from /proc/<pid>/task/<tid>/schedstat (ns
 * precision, unlike the 10 ms ticks of /proc/<pid>/stat), in seconds.
 */
export function threadSchedstat(pid: number, tid: number): { cpu: number; wait: number } {
  try {
    const [cpu, wait] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ");
    return { cpu: Number(cpu) / 1e9, wait: Number(wait) / 1e9 };
  } catch {
    return { cpu: Number.NaN, wait: Number.NaN };
  }
}

/** CPU seconds the calling thread has used (a worker thread's own, unlike process.cpuUsage()). */
export function ownThreadCpuSeconds(): number {
  try {
    return Number(readFileSync("/proc/thread-self/schedstat", "utf8").split(" ")[0]) / 1e9;
  } catch {
    return Number.NaN;
  }
}

/** The same summed over every thread of a process (threads that ended meanwhile are lost). */
export function processSchedstat(pid: number): { cpu: number; wait: number } {
  let cpu = 0;
  let wait = 0;
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return { cpu: Number.NaN, wait: Number.NaN };
  }
  for (const tid of tids) {
    const thread = threadSchedstat(pid, Number(tid));
    if (Number.isFinite(thread.cpu)) {
      cpu += thread.cpu;
      wait += thread.wait;
    }
  }
  return { cpu, wait };
}

/** The 1-minute load average now, for the notes: other processes skew the figures. */
export function loadNote(competitors: string): string {
  const load = loadavg()[0] ?? 0;
  return `load average ${load.toFixed(2)} on ${cpus().length} CPUs when the measurement started${load > 1 ? ` (other processes compete with ${competitors}: expect noise)` : ""}`;
}

/**
 * Writes every dirty page back (sync(1)); returns how long that took, in ms. Distribution
 * writes blobs without fsync, so its writes may still be waiting for writeback when the next
 * scenario (or the next registry) starts, and whoever fsyncs then would pay for them. Each
 * scenario therefore starts with the page cache written back (15-80 ms in the runs so far:
 * little was pending, so this guards the comparison rather than explaining the push
 * figures' spread).
 */
export function flushWriteback(): number {
  const started = performance.now();
  spawnSync("sync", [], { stdio: "ignore" });
  return performance.now() - started;
}
