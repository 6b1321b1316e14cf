// Keeps the recent stdout/stderr lines of a registry child process, so that test failures can
// show what the server logged while answering.
import type { ChildProcess } from "node:child_process";

export interface ServerLog {
  /** The last lines the process printed, oldest first. */
  tail(): string;
}

export function attachServerLog(child: ChildProcess, maxLines = 80): ServerLog {
  const lines: string[] = [];
  const collect = (stream: string) => {
    let partial = "";
    return (chunk: Buffer): void => {
      const text = partial + chunk.toString("utf8");
      const parts = text.split("\n");
      partial = parts.pop() ?? "";
      for (const line of parts) {
        lines.push(`[${stream}] ${line}`);
        if (lines.length > maxLines) lines.shift();
      }
    };
  };
  child.stdout?.on("data", collect("stdout"));
  child.stderr?.on("data", collect("stderr"));
  return { tail: () => (lines.length > 0 ? lines.join("\n") : "(nothing logged)") };
}
