// `meridian replication show <name> --watch`: asks for the replica's status every half
// second and redraws it until it is Ready (or Failed), with no manual refresh. On a
// terminal it is a progress bar of the bytes (or repositories) still to come; otherwise
// a plain line each time the status changes, for logs and scripts.
import type { ReplicationView } from "../control/replication-view.ts";
import { formatBytes } from "./format-bytes.ts";
import { pendingText } from "./replication-output.ts";

const intervalMs = 500;

export async function watchReplication(
  get: () => Promise<ReplicationView>,
  stream: NodeJS.WriteStream = process.stdout,
): Promise<ReplicationView> {
  // Loaded when drawn: the module is in every replica's bundle, the bar only in the CLI's.
  const cliProgress = stream.isTTY ? (await import("cli-progress")).default : undefined;
  const bar = cliProgress
    ? new cliProgress.SingleBar({
        stream,
        format: "{name} {status} [{bar}] {percentage}% {detail}",
        hideCursor: true,
        clearOnComplete: false,
        barCompleteChar: "#",
        barIncompleteChar: ".",
      })
    : undefined;
  let last = "";
  /** The most bytes seen pending: the bar's whole length. */
  let total = 0;
  for (;;) {
    const view = await get();
    const pending = view.pending.bytes;
    total = Math.max(total, pending, 1);
    const detail = pendingText(view);
    if (bar) {
      const done = view.status === "Ready" ? total : total - pending;
      if (last === "") bar.start(total, done, { name: view.name, status: view.status, detail });
      bar.setTotal(total);
      bar.update(done, { status: view.status, detail });
    } else {
      const line = `${view.name} ${view.status}${detail ? `: ${detail}` : ""}`;
      if (line !== last) stream.write(`${line}\n`);
      last = line;
    }
    last ||= view.status;
    if (view.status === "Ready" || view.status === "Failed") {
      bar?.stop();
      if (bar) {
        stream.write(
          view.status === "Ready"
            ? `${view.name} is Ready (${formatBytes(total > 1 ? total : 0)} caught up)\n`
            : `${view.name} Failed: ${view.statusMessage ?? ""}\n`,
        );
      }
      return view;
    }
    await new Promise((done) => setTimeout(done, intervalMs));
  }
}
