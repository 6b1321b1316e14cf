// The console of `meridian up`: a table of the regions when the registry starts, then one
// line per notable event (a replica ready, bootstrapping, draining, deleted, restarted,
// and every warning or error a replica logs) instead of every replica's JSON log.
// `--log-format json` forwards the replicas' own log lines unchanged instead.

/** Informational messages of the replicas worth a line on the console. */
const notable = new Set([
  "replica is ready",
  "bootstrapping from a peer",
  "bootstrap done; following every peer",
  "draining a replica before it is deleted",
  "replica deleted",
  "no longer following a peer",
]);

export class UpConsole {
  private quiet = false;

  constructor(
    private readonly format: "human" | "json",
    private readonly write: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
  ) {}

  /** From now on nothing but the closing line: a stopping registry is not news. */
  silence(): void {
    this.quiet = true;
  }

  /** A line a replica wrote (JSON log, or anything else on stderr). */
  replicaLine(region: string, line: string): void {
    if (this.quiet) return;
    if (this.format === "json") {
      this.write(line);
      return;
    }
    let record: { level?: number; msg?: string; err?: unknown; peer?: string; region?: string };
    try {
      record = JSON.parse(line) as typeof record;
    } catch {
      return;
    }
    const level = record.level ?? 30;
    if (level < 40 && !notable.has(record.msg ?? "")) return;
    const detail = record.peer ? ` (${record.peer})` : "";
    const error =
      typeof record.err === "object" && record.err !== null && "message" in record.err
        ? `: ${String((record.err as { message: unknown }).message)}`
        : typeof record.err === "string"
          ? `: ${record.err}`
          : "";
    const severity = level >= 50 ? "error " : level >= 40 ? "warning " : "";
    this.event(region, `${severity}${record.msg ?? ""}${detail}${error}`);
  }

  /** A notable event of the supervisor itself. */
  event(region: string, message: string): void {
    if (this.quiet) return;
    const time = new Date().toISOString().slice(11, 19);
    this.write(`${time}  ${region.padEnd(16)} ${message}`);
  }

  /** Lines the console prints whatever the format (the table, the closing line). */
  print(text: string): void {
    this.write(text);
  }
}
