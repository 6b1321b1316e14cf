// How `meridian replication` prints replications: a table (the default), JSON or YAML as
// `az acr replication -o` does; an unknown format is an error before anything is asked.
import { stringify as toYaml } from "yaml";
import type { ReplicationView } from "../control/replication-view.ts";
import { formatBytes } from "./format-bytes.ts";

export type OutputFormat = "table" | "json" | "yaml";

export function outputFormat(value: string): OutputFormat {
  if (value === "table" || value === "json" || value === "yaml") return value;
  throw new Error(`unknown output format '${value}': use table, json or yaml`);
}

export function render(views: ReplicationView[] | ReplicationView, format: OutputFormat): string {
  if (format === "json") return JSON.stringify(views, null, 2);
  if (format === "yaml") return toYaml(views).trimEnd();
  const rows = Array.isArray(views) ? views : [views];
  const header = [
    "NAME".padEnd(16),
    "ENDPOINT".padEnd(26),
    "HOME".padEnd(5),
    "PROVISIONING".padEnd(13),
    "STATUS".padEnd(9),
    "PENDING",
  ].join(" ");
  return [header, ...rows.map(row)].join("\n");
}

function row(view: ReplicationView): string {
  return [
    view.name.padEnd(16),
    (view.endpoint ?? "-").padEnd(26),
    (view.home ? "yes" : "").padEnd(5),
    view.provisioningState.padEnd(13),
    view.status.padEnd(9),
    pendingText(view),
  ].join(" ");
}

/** What is still on its way, with the time left when a rate is measured. */
export function pendingText(view: ReplicationView): string {
  if (view.status === "Failed" || view.status === "Deleting" || view.status === "Creating") {
    return view.statusMessage ?? "";
  }
  const { records, blobs, bytes, repositories } = view.pending;
  const parts = [
    ...(repositories ? [`${repositories} repositories`] : []),
    `${records} records`,
    `${blobs} blobs`,
    formatBytes(bytes),
  ];
  const eta =
    view.secondsLeft !== undefined && bytes > 0 ? `, about ${view.secondsLeft} s left` : "";
  return `${parts.join(", ")}${eta}${view.lagSeconds > 0 ? `, lag ${view.lagSeconds.toFixed(1)} s` : ""}`;
}
