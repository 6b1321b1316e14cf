// A replica's routing switch (whether the global endpoint sends clients to it): a switch
// named "Routing for <region>", which PATCHes the replication and shows a refusal inline.
import { useState } from "preact/hooks";
import { call, messageOf, type Replication } from "./api.ts";

export function RoutingToggle(props: { replica: Replication; onChanged: () => void }) {
  const { replica } = props;
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);
  const toggle = async () => {
    setBusy(true);
    setError(undefined);
    try {
      await call("PATCH", `/_meridian/admin/replications/${encodeURIComponent(replica.name)}`, {
        body: { regionEndpointEnabled: !replica.regionEndpointEnabled },
      });
      props.onChanged();
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <span class="routing">
      <label class="check">
        <input
          type="checkbox"
          role="switch"
          aria-checked={replica.regionEndpointEnabled}
          aria-label={`Routing for ${replica.name}`}
          checked={replica.regionEndpointEnabled}
          disabled={busy}
          onChange={() => void toggle()}
        />
        <span aria-hidden="true">
          {replica.regionEndpointEnabled ? "routing on" : "routing off"}
        </span>
      </label>
      {error && (
        <span class="error" role="alert">
          {error}
        </span>
      )}
    </span>
  );
}
