// The replication health page: the lag of each peer over the last hour as a chart (the
// serving replica samples its followers every ten seconds while it runs:
// /portal/api/lag-history),
// the replications list, what this replica sees of each peer (/_meridian/status) and its
// repair counters (/portal/api/counters).
import { Fragment } from "preact";
import { getJson, type Replication } from "./api.ts";
import { bytes, seconds } from "./format.ts";
import { replicationsPath } from "./map-page.tsx";
import { usePoll } from "./use-poll.ts";

const sampleMs = 5_000;
/** The chart spans the hour the serving replica keeps. */
const windowMs = 3600_000;

interface Sample {
  at: number;
  lag: Record<string, number>;
}

interface StatusReport {
  region: string;
  status: string;
  pending: { records: number; blobs: number; bytes: number };
  peers: {
    region: string;
    connected: boolean;
    checkpoint: number;
    head: number;
    lagSeconds: number;
    lastError?: string;
  }[];
}

const counters = {
  meridian_replication_anti_entropy_repairs_total: "Anti-entropy repairs",
  meridian_replication_records_given_up_total: "Records given up",
  meridian_replication_stamps_refused_total: "Stamps refused (clock skew)",
  meridian_replication_tag_conflicts_total: "Tag conflicts resolved (an older write lost)",
  meridian_replication_feed_errors_total: "Feed errors",
} as const;

export function HealthPage() {
  const history = usePoll(() => getJson<Sample[]>("/portal/api/lag-history"), 10_000);
  const samples = history.data ?? [];
  const replications = usePoll(() => getJson<Replication[]>(replicationsPath), sampleMs);
  const status = usePoll(() => getJson<StatusReport>("/_meridian/status"), sampleMs);
  const metrics = usePoll(
    () => getJson<{ region: string; counters: Record<string, number> }>("/portal/api/counters"),
    15_000,
  );

  return (
    <section aria-labelledby="health-title">
      <h1 id="health-title">Replication health</h1>
      <h2>
        Lag of each peer as {status.data?.region ?? "this replica"} follows it, last hour (sampled
        every 10 s)
      </h2>
      <LagChart samples={samples} />
      <div class="table-frame">
        <table>
          <thead>
            <tr>
              <th scope="col">Replica</th>
              <th scope="col">Status</th>
              <th scope="col">Lag</th>
              <th scope="col">Pending</th>
            </tr>
          </thead>
          <tbody>
            {(replications.data ?? []).map((r) => (
              <tr key={r.name}>
                <th scope="row">{r.name}</th>
                <td>{r.status}</td>
                <td>{seconds(r.lagSeconds)}</td>
                <td>
                  {r.pending.records} records, {r.pending.blobs} blobs, {bytes(r.pending.bytes)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {status.data && (
        <>
          <h2>Peers as {status.data.region} follows them</h2>
          <div class="table-frame">
            <table>
              <thead>
                <tr>
                  <th scope="col">Peer</th>
                  <th scope="col">Connected</th>
                  <th scope="col">Applied / head</th>
                  <th scope="col">Lag</th>
                  <th scope="col">Last error</th>
                </tr>
              </thead>
              <tbody>
                {status.data.peers.map((p) => (
                  <tr key={p.region}>
                    <th scope="row">{p.region}</th>
                    <td>{p.connected ? "yes" : "no"}</td>
                    <td>
                      {p.checkpoint} / {p.head}
                    </td>
                    <td>{seconds(p.lagSeconds)}</td>
                    <td>{p.lastError ?? "-"}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
      <h2>Repairs and refusals on {metrics.data?.region ?? "this replica"} since it started</h2>
      <dl class="facts">
        {Object.entries(counters).map(([name, label]) => (
          <Fragment key={name}>
            <dt>{label}</dt>
            <dd>{metrics.data?.counters[name] ?? 0}</dd>
          </Fragment>
        ))}
      </dl>
    </section>
  );
}

const palette = ["#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#ca8a04"];

function LagChart(props: { samples: Sample[] }) {
  const width = 720;
  const height = 200;
  const now = Date.now();
  const names = [...new Set(props.samples.flatMap((s) => Object.keys(s.lag)))].sort();
  const top = Math.max(1, ...props.samples.flatMap((s) => Object.values(s.lag)));
  const x = (at: number) => ((at - (now - windowMs)) / windowMs) * width;
  const y = (lag: number) => height - (lag / top) * (height - 10);
  return (
    <figure class="chart">
      <svg
        viewBox={`0 0 ${width} ${height}`}
        role="img"
        aria-label={`Lag per peer, up to ${seconds(top)}`}
      >
        <line x1="0" y1={height} x2={width} y2={height} class="axis" />
        {names.map((name, i) => (
          <polyline
            key={name}
            fill="none"
            stroke={palette[i % palette.length]}
            stroke-width="2"
            points={props.samples
              .filter((s) => s.lag[name] !== undefined)
              .map((s) => `${x(s.at).toFixed(1)},${y(s.lag[name] ?? 0).toFixed(1)}`)
              .join(" ")}
          />
        ))}
      </svg>
      <figcaption>
        {names.map((name, i) => (
          <span key={name} class="series">
            <svg class="swatch" viewBox="0 0 10 10" aria-hidden="true">
              <rect width="10" height="10" fill={palette[i % palette.length]} />
            </svg>{" "}
            {name}
          </span>
        ))}
        <span class="hint">
          {" "}
          top of the chart: {seconds(top)}; {props.samples.length} samples
        </span>
      </figcaption>
    </figure>
  );
}
