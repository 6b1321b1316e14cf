// How `meridian import` shows a running job: on a terminal, a bar of bytes and blobs with
// one line per blob streaming now, redrawn in place; elsewhere (a CI log, a pipe), one
// plain line whenever the state or the count of finished blobs changes.
import type { ImportProgress } from "../import/image-importer.ts";
import { formatBytes } from "./format-bytes.ts";

export interface JobView {
  id: string;
  state: "queued" | "running" | "succeeded" | "failed";
  source: string;
  image: string;
  region?: string;
  digest?: string;
  reason?: string;
  /** The job's progress as the replica reports it (ImportProgress, read over HTTP). */
  progress: Omit<ImportProgress, "manifestsDone" | "manifestsTotal">;
}

export interface ProgressSink {
  write(text: string): void;
}

const barWidth = 30;

export class ImportProgressView {
  private drawn = 0;
  private lastKey = "";

  constructor(
    private readonly sink: ProgressSink,
    private readonly terminal: boolean,
  ) {}

  show(job: JobView): void {
    if (this.terminal) {
      const lines = terminalLines(job);
      // Back to the first line drawn last time, clear down, draw again.
      const up = this.drawn > 0 ? `\x1b[${this.drawn}A\r\x1b[J` : "";
      this.sink.write(`${up}${lines.join("\n")}\n`);
      this.drawn = lines.length;
      return;
    }
    // A log gets a line per step (a state, a finished blob), not one per poll.
    const key = `${job.state} ${job.progress.blobsDone}`;
    if (key !== this.lastKey) this.sink.write(`${plainLine(job)}\n`);
    this.lastKey = key;
  }
}

export function terminalLines(job: JobView): string[] {
  const p = job.progress;
  if (job.state === "queued") return [`import ${job.id}: queued`];
  const share =
    p.bytesTotal > 0
      ? p.bytesDone / p.bytesTotal
      : p.blobsTotal > 0
        ? p.blobsDone / p.blobsTotal
        : 0;
  const filled = Math.min(barWidth, Math.round(share * barWidth));
  const bar = `[${"#".repeat(filled)}${".".repeat(barWidth - filled)}]`;
  const head = `${bar} ${String(Math.floor(share * 100)).padStart(3)}%  ${formatBytes(p.bytesDone)} / ${formatBytes(p.bytesTotal)}  blobs ${p.blobsDone}/${p.blobsTotal}${p.throttled > 0 ? `  (source throttled ${p.throttled}x)` : ""}`;
  const layers = p.active.map(
    (a) => `  ${a.digest.slice(0, 19)}  ${formatBytes(a.bytesDone)} / ${formatBytes(a.size)}`,
  );
  return [head, ...layers];
}

export function plainLine(job: JobView): string {
  const p = job.progress;
  if (job.state === "queued") return `import ${job.id}: queued`;
  return `import ${job.id}: ${job.state}, blobs ${p.blobsDone}/${p.blobsTotal}, ${formatBytes(p.bytesDone)} / ${formatBytes(p.bytesTotal)}`;
}

/** The final line of a job that succeeded. */
export function summary(job: JobView): string {
  const p = job.progress;
  return `imported ${job.source} as ${job.image} (${job.digest ?? "?"}): ${p.blobsTotal} blobs, ${formatBytes(p.bytesTransferred)} copied, ${p.blobsSkipped} already present`;
}
