// The replications page: what `meridian replication list` shows, refreshed every two
// seconds, with each replica's routing switch and a confirmed delete (the home replica's
// refusal is shown in the server's words), and the usage per region and per region pair.
import { useState } from "preact/hooks";
import { ApiError, call, getJson, type Replication, type Usage } from "./api.ts";
import { ConfirmDialog } from "./confirm-dialog.tsx";
import { bytes, seconds, when } from "./format.ts";
import { replicationsPath } from "./map-page.tsx";
import { RoutingToggle } from "./routing-toggle.tsx";
import { usePoll } from "./use-poll.ts";

async function readUsage(): Promise<Usage | "absent"> {
  try {
    return await getJson<Usage>("/_meridian/admin/usage");
  } catch (e) {
    // A registry older than the usage API answers 404.
    if (e instanceof ApiError && e.status === 404) return "absent";
    throw e;
  }
}

export function ReplicationsPage() {
  const list = usePoll(() => getJson<Replication[]>(replicationsPath), 2_000);
  const usage = usePoll(readUsage, 10_000);
  const [deleting, setDeleting] = useState<Replication | undefined>(undefined);
  const stored = new Map(
    usage.data && usage.data !== "absent" ? usage.data.regions.map((r) => [r.region, r]) : [],
  );
  return (
    <section aria-labelledby="replications-title">
      <h1 id="replications-title">Replications</h1>
      {list.error && (
        <p class="error" role="alert">
          {list.error}
        </p>
      )}
      <div class="table-frame">
        <table>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Status</th>
              <th scope="col">Provisioning</th>
              <th scope="col">Routing</th>
              <th scope="col">Lag</th>
              <th scope="col">Pending</th>
              <th scope="col">Stored</th>
              <th scope="col">Endpoint</th>
              <th scope="col">Created</th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {(list.data ?? []).map((r) => (
              <tr key={r.name} data-replication={r.name}>
                <th scope="row">
                  {r.name} {r.home && <span class="badge">home</span>}
                </th>
                <td data-status={r.status}>
                  {r.status}
                  {r.statusMessage && <div class="hint">{r.statusMessage}</div>}
                </td>
                <td>{r.provisioningState}</td>
                <td>
                  <RoutingToggle replica={r} onChanged={list.refresh} />
                </td>
                <td>{seconds(r.lagSeconds)}</td>
                <td>
                  {r.pending.records} rec, {r.pending.blobs} blobs, {bytes(r.pending.bytes)}
                  {r.secondsLeft !== undefined && (
                    <div class="hint">{seconds(r.secondsLeft)} left</div>
                  )}
                </td>
                <td data-stored={stored.get(r.region)?.storedBytes ?? "-"}>
                  {stored.has(r.region)
                    ? `${bytes(stored.get(r.region)?.storedBytes ?? 0)} (${stored.get(r.region)?.blobs} blobs)`
                    : "-"}
                </td>
                <td class="mono">{r.endpoint ?? "-"}</td>
                <td>{when(r.createdAt)}</td>
                <td>
                  <button
                    type="button"
                    class="danger"
                    aria-label={`Delete ${r.name}`}
                    onClick={() => setDeleting(r)}
                  >
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <h2>Transfers between regions</h2>
      {usage.error && <p class="error">{usage.error}</p>}
      {usage.data === "absent" && <p>This registry does not report usage yet.</p>}
      {usage.data && usage.data !== "absent" && (
        <div class="table-frame">
          <table>
            <thead>
              <tr>
                <th scope="col">From</th>
                <th scope="col">To</th>
                <th scope="col">Bytes</th>
              </tr>
            </thead>
            <tbody>
              {usage.data.transfers.map((t) => (
                <tr key={`${t.from}>${t.to}`}>
                  <td>{t.from}</td>
                  <td>{t.to}</td>
                  <td>{bytes(t.bytes)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {deleting && (
        <ConfirmDialog
          title={`Delete the replica in ${deleting.name}?`}
          action="Delete"
          danger
          onConfirm={async () => {
            await call("DELETE", `${replicationsPath}/${encodeURIComponent(deleting.name)}`);
            list.refresh();
          }}
          onClose={() => setDeleting(undefined)}
        >
          <p>
            Its content is first drained into the other replicas; then its process and data are
            removed.
          </p>
        </ConfirmDialog>
      )}
    </section>
  );
}
