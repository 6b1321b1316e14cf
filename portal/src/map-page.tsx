// The map page: every region of the catalogue on the world map, the replicas' live status
// read every second, and the selected region's details. Selecting an available region asks
// to create a replica there (a confirmation whose button is "Create"); the new marker then
// goes from Creating to Ready by itself.
import { useState } from "preact/hooks";
import { call, getJson, type RegionChoice, type Replication } from "./api.ts";
import { ConfirmDialog } from "./confirm-dialog.tsx";
import { bytes, seconds } from "./format.ts";
import { RoutingToggle } from "./routing-toggle.tsx";
import { usePoll } from "./use-poll.ts";
import { describeRegion, type MapRegion, stateOf, WorldMap } from "./world-map.tsx";

export const replicationsPath = "/_meridian/admin/replications";

export function MapPage() {
  const regions = usePoll(() => getJson<RegionChoice[]>("/portal/api/regions"), 30_000);
  const replications = usePoll(() => getJson<Replication[]>(replicationsPath), 1_000);
  const [selected, setSelected] = useState<string | undefined>(undefined);
  const [creating, setCreating] = useState<RegionChoice | undefined>(undefined);
  const [notice, setNotice] = useState<string | undefined>(undefined);

  const byRegion = new Map((replications.data ?? []).map((r) => [r.region, r]));
  const mapRegions: MapRegion[] = (regions.data ?? []).map((choice) => ({
    choice,
    replica: byRegion.get(choice.name),
  }));
  const current = mapRegions.find((r) => r.choice.name === selected);
  const select = (region: MapRegion) => {
    setSelected(region.choice.name);
    setNotice(undefined);
    if (stateOf(region) === "available") setCreating(region.choice);
  };
  const create = async (choice: RegionChoice, routing: boolean) => {
    const answer = await call<Replication & { joinCommand?: string }>("POST", replicationsPath, {
      body: { location: choice.name, regionEndpointEnabled: routing },
    });
    if (answer.body.joinCommand) {
      setNotice(`Run this on the machine of the new replica: ${answer.body.joinCommand}`);
    } else {
      setNotice(`Creating a replica in ${choice.displayName}.`);
    }
    replications.refresh();
  };

  return (
    <section aria-labelledby="map-title">
      <h1 id="map-title">Regions</h1>
      <Legend />
      <RegionPicker regions={mapRegions} selected={selected} onSelect={select} />
      {(regions.error || replications.error) && (
        <p class="error" role="alert">
          {regions.error ?? replications.error}
        </p>
      )}
      <div class="map-layout">
        <div class="map-frame">
          <WorldMap regions={mapRegions} selected={selected} onSelect={select} />
        </div>
        <aside class="region-panel" aria-live="polite" aria-label="Selected region">
          {notice && <p class="notice">{notice}</p>}
          {current ? (
            <RegionDetails region={current} onChanged={replications.refresh} />
          ) : (
            <p>Select a region on the map (Tab moves between them, Enter selects).</p>
          )}
        </aside>
      </div>
      <OffMap regions={mapRegions} />
      {creating && (
        <CreateDialog choice={creating} onCreate={create} onClose={() => setCreating(undefined)} />
      )}
    </section>
  );
}

/** The regions as a list too: for a small screen, and for whoever prefers one. */
function RegionPicker(props: {
  regions: MapRegion[];
  selected: string | undefined;
  onSelect: (region: MapRegion) => void;
}) {
  const sorted = [...props.regions].sort((a, b) =>
    a.choice.displayName.localeCompare(b.choice.displayName),
  );
  return (
    <label class="picker">
      Region{" "}
      <select
        value={props.selected ?? ""}
        onChange={(event) => {
          const name = (event.target as HTMLSelectElement).value;
          const region = props.regions.find((r) => r.choice.name === name);
          if (region) props.onSelect(region);
        }}
      >
        <option value="">Choose a region</option>
        {sorted.map((region) => (
          <option key={region.choice.name} value={region.choice.name}>
            {region.choice.displayName} ({stateOf(region)}
            {region.replica ? `, ${region.replica.status}` : ""})
          </option>
        ))}
      </select>
    </label>
  );
}

function Legend() {
  return (
    <ul class="legend" aria-label="Legend">
      <li>
        <span class="swatch replica" aria-hidden="true" /> replica (H: home, ring: routing off)
      </li>
      <li>
        <span class="swatch available" aria-hidden="true" /> available
      </li>
      <li>
        <span class="swatch unavailable" aria-hidden="true" /> unavailable (hover for why)
      </li>
    </ul>
  );
}

function RegionDetails(props: { region: MapRegion; onChanged: () => void }) {
  const { choice, replica } = props.region;
  if (!replica) {
    return (
      <>
        <h2>{choice.displayName}</h2>
        <p>{describeRegion(props.region)}</p>
      </>
    );
  }
  return (
    <>
      <h2>
        {choice.displayName} {replica.home && <span class="badge">home</span>}
      </h2>
      <dl class="facts">
        <dt>Status</dt>
        <dd data-testid="region-status">{replica.status}</dd>
        {replica.statusMessage && (
          <>
            <dt>Detail</dt>
            <dd>{replica.statusMessage}</dd>
          </>
        )}
        <dt>Provisioning</dt>
        <dd>{replica.provisioningState}</dd>
        <dt>Lag</dt>
        <dd>{seconds(replica.lagSeconds)}</dd>
        <dt>Pending</dt>
        <dd>
          {replica.pending.records} records, {replica.pending.blobs} blobs (
          {bytes(replica.pending.bytes)})
        </dd>
        {replica.secondsLeft !== undefined && replica.pending.bytes > 0 && (
          <>
            <dt>Time left</dt>
            <dd>
              {seconds(replica.secondsLeft)} at {bytes(replica.bytesPerSecond)}/s
            </dd>
          </>
        )}
        <dt>Endpoint</dt>
        <dd>{replica.endpoint ?? "not joined yet"}</dd>
      </dl>
      <RoutingToggle replica={replica} onChanged={props.onChanged} />
      {replica.home && <p class="hint">The home replica is deleted only with the registry.</p>}
    </>
  );
}

function CreateDialog(props: {
  choice: RegionChoice;
  onCreate: (choice: RegionChoice, routing: boolean) => Promise<void>;
  onClose: () => void;
}) {
  const [routing, setRouting] = useState(true);
  return (
    <ConfirmDialog
      title={`Create a replica in ${props.choice.displayName}?`}
      action="Create"
      onConfirm={() => props.onCreate(props.choice, routing)}
      onClose={props.onClose}
    >
      <p>
        The new replica ({props.choice.name}) copies every image from its nearest replica, then
        follows every region. Its marker shows its progress until it is Ready.
      </p>
      <label class="check">
        <input
          type="checkbox"
          checked={routing}
          onChange={(event) => setRouting((event.target as HTMLInputElement).checked)}
        />
        Route global endpoint traffic to it
      </label>
    </ConfirmDialog>
  );
}

/** Replicas in custom locations without coordinates: listed, since the map cannot hold them. */
function OffMap(props: { regions: MapRegion[] }) {
  const off = props.regions.filter(
    (r) => r.replica && (r.choice.latitude === undefined || r.choice.longitude === undefined),
  );
  if (off.length === 0) return null;
  return (
    <p>
      Not on the map (no coordinates):{" "}
      {off.map((r) => `${r.choice.name} (${r.replica?.status})`).join(", ")}
    </p>
  );
}
