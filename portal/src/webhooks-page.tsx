// The webhooks page, over the webhooks admin API (src/webhooks/webhook-admin-api.ts):
// the list, a form to create or edit one, enable or disable, ping, a confirmed delete, and
// a webhook's delivery log (every attempt's status, latency and response, dead letters)
// with redeliver.
import { useState } from "preact/hooks";
import { call, getJson, messageOf } from "./api.ts";
import { ConfirmDialog } from "./confirm-dialog.tsx";
import { when } from "./format.ts";
import { usePoll } from "./use-poll.ts";

const webhooksPath = "/_meridian/admin/webhooks";

interface WebhookView {
  name: string;
  uri: string;
  actions: string[];
  location: string | null;
  scope: string | null;
  headers: string[];
  status: "enabled" | "disabled";
  secretSet: boolean;
}

interface WebhookEvent {
  id: string;
  action: string;
  repository: string;
  state: "pending" | "delivered" | "dead";
  attempts: number;
  region: string;
  createdAt: string;
  nextAttemptAt?: string;
  log: { at: string; status: number | null; latencyMs: number; response: string }[];
}

const pathOf = (name: string) => `${webhooksPath}/${encodeURIComponent(name)}`;

export function WebhooksPage() {
  const list = usePoll(() => getJson<WebhookView[]>(webhooksPath), 5_000);
  const [editing, setEditing] = useState<WebhookView | "new" | undefined>(undefined);
  const [events, setEvents] = useState<string | undefined>(undefined);
  const [deleting, setDeleting] = useState<string | undefined>(undefined);
  const [message, setMessage] = useState<string | undefined>(undefined);
  const act = async (what: () => Promise<string>) => {
    try {
      setMessage(await what());
      list.refresh();
    } catch (e) {
      setMessage(messageOf(e));
    }
  };
  return (
    <section aria-labelledby="webhooks-title">
      <h1 id="webhooks-title">Webhooks</h1>
      <div class="toolbar">
        <button type="button" class="primary" onClick={() => setEditing("new")}>
          New webhook
        </button>
      </div>
      {(list.error || message) && (
        <p class={list.error ? "error" : "notice"} role="status">
          {list.error ?? message}
        </p>
      )}
      {editing && (
        <WebhookForm
          webhook={editing === "new" ? undefined : editing}
          onDone={(text) => {
            setEditing(undefined);
            if (text) setMessage(text);
            list.refresh();
          }}
        />
      )}
      <div class="table-frame">
        <table>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">URI</th>
              <th scope="col">Actions</th>
              <th scope="col">Location</th>
              <th scope="col">Scope</th>
              <th scope="col">Status</th>
              <th scope="col">
                <span class="visually-hidden">Operations</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {(list.data ?? []).map((w) => (
              <tr key={w.name}>
                <th scope="row">{w.name}</th>
                <td class="mono">{w.uri}</td>
                <td>{w.actions.join(", ")}</td>
                <td>{w.location ?? "origin"}</td>
                <td>{w.scope ?? "all"}</td>
                <td>{w.status}</td>
                <td class="actions">
                  <button type="button" aria-label={`Edit ${w.name}`} onClick={() => setEditing(w)}>
                    Edit
                  </button>
                  <button
                    type="button"
                    aria-label={`${w.status === "enabled" ? "Disable" : "Enable"} ${w.name}`}
                    onClick={() =>
                      void act(async () => {
                        const status = w.status === "enabled" ? "disabled" : "enabled";
                        await call("PATCH", pathOf(w.name), { body: { status } });
                        return `${w.name} is ${status}.`;
                      })
                    }
                  >
                    {w.status === "enabled" ? "Disable" : "Enable"}
                  </button>
                  <button
                    type="button"
                    aria-label={`Ping ${w.name}`}
                    onClick={() =>
                      void act(async () => {
                        const answer = await call<{ status: number | null; latencyMs: number }>(
                          "POST",
                          `${pathOf(w.name)}/ping`,
                        );
                        return `Ping of ${w.name}: ${answer.body.status ?? "no answer"} in ${answer.body.latencyMs} ms.`;
                      })
                    }
                  >
                    Ping
                  </button>
                  <button
                    type="button"
                    aria-label={`Deliveries of ${w.name}`}
                    aria-expanded={events === w.name}
                    onClick={() => setEvents(events === w.name ? undefined : w.name)}
                  >
                    Deliveries
                  </button>
                  <button
                    type="button"
                    class="danger"
                    aria-label={`Delete ${w.name}`}
                    onClick={() => setDeleting(w.name)}
                  >
                    Delete
                  </button>
                </td>
              </tr>
            ))}
            {list.data && list.data.length === 0 && (
              <tr>
                <td colSpan={7}>No webhooks.</td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
      {events && <DeliveryLog key={events} name={events} />}
      {deleting && (
        <ConfirmDialog
          title={`Delete the webhook ${deleting}?`}
          action="Delete"
          danger
          onConfirm={async () => {
            await call("DELETE", pathOf(deleting));
            list.refresh();
          }}
          onClose={() => setDeleting(undefined)}
        >
          <p>Its pending deliveries are dropped.</p>
        </ConfirmDialog>
      )}
    </section>
  );
}

function WebhookForm(props: { webhook: WebhookView | undefined; onDone: (text?: string) => void }) {
  const existing = props.webhook;
  const [name, setName] = useState(existing?.name ?? "");
  const [uri, setUri] = useState(existing?.uri ?? "");
  const [push, setPush] = useState(existing ? existing.actions.includes("push") : true);
  const [remove, setRemove] = useState(existing ? existing.actions.includes("delete") : false);
  const [location, setLocation] = useState(existing?.location ?? "");
  const [scope, setScope] = useState(existing?.scope ?? "");
  const [secret, setSecret] = useState("");
  const [error, setError] = useState<string | undefined>(undefined);
  const text = (set: (v: string) => void) => (event: Event) =>
    set((event.target as HTMLInputElement).value);
  const submit = async (event: Event) => {
    event.preventDefault();
    const actions = [...(push ? ["push"] : []), ...(remove ? ["delete"] : [])];
    try {
      if (existing) {
        await call("PATCH", pathOf(existing.name), {
          body: {
            uri,
            actions,
            location: location || null,
            scope: scope || null,
            ...(secret ? { secret } : {}),
          },
        });
        props.onDone(`${existing.name} updated.`);
      } else {
        await call("POST", webhooksPath, {
          body: {
            name,
            uri,
            actions,
            ...(location ? { location } : {}),
            ...(scope ? { scope } : {}),
            ...(secret ? { secret } : {}),
          },
        });
        props.onDone(`${name} created.`);
      }
    } catch (e) {
      setError(messageOf(e));
    }
  };
  return (
    <form class="card" onSubmit={(event) => void submit(event)} aria-label="Webhook">
      <h2>{existing ? `Edit ${existing.name}` : "New webhook"}</h2>
      <label>
        Name
        <input value={name} onInput={text(setName)} disabled={!!existing} required />
      </label>
      <label>
        URI
        <input type="url" value={uri} onInput={text(setUri)} required />
      </label>
      <fieldset>
        <legend>Actions</legend>
        <label class="check">
          <input type="checkbox" checked={push} onChange={() => setPush(!push)} /> push
        </label>
        <label class="check">
          <input type="checkbox" checked={remove} onChange={() => setRemove(!remove)} /> delete
        </label>
      </fieldset>
      <label>
        Location (region that delivers; empty: where the event happens)
        <input value={location} onInput={text(setLocation)} />
      </label>
      <label>
        Scope (repo:tag, * wildcards; empty: everything)
        <input value={scope} onInput={text(setScope)} />
      </label>
      <label>
        Secret {existing?.secretSet && "(one is set; leave empty to keep it)"}
        <input type="password" autocomplete="off" value={secret} onInput={text(setSecret)} />
      </label>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <div class="confirm-actions">
        <button type="button" onClick={() => props.onDone()}>
          Cancel
        </button>
        <button type="submit" class="primary">
          Save
        </button>
      </div>
    </form>
  );
}

function DeliveryLog(props: { name: string }) {
  const events = usePoll(
    () => getJson<WebhookEvent[]>(`${pathOf(props.name)}/events?limit=50`),
    5_000,
    props.name,
  );
  const [message, setMessage] = useState<string | undefined>(undefined);
  return (
    <section aria-labelledby="deliveries-title">
      <h2 id="deliveries-title">Deliveries of {props.name}</h2>
      {(events.error || message) && <p role="status">{events.error ?? message}</p>}
      <div class="table-frame">
        <table>
          <thead>
            <tr>
              <th scope="col">Event</th>
              <th scope="col">State</th>
              <th scope="col">Attempts</th>
              <th scope="col">Log</th>
              <th scope="col">
                <span class="visually-hidden">Operations</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {(events.data ?? []).map((e) => (
              <tr key={e.id}>
                <td>
                  {e.action} {e.repository}
                  <div class="hint">
                    {e.region}, {when(e.createdAt)}
                  </div>
                </td>
                <td class={`state-${e.state}`}>{e.state}</td>
                <td>{e.attempts}</td>
                <td>
                  <ol class="attempts">
                    {e.log.map((attempt) => (
                      <li key={attempt.at}>
                        {when(attempt.at)}: {attempt.status ?? "no answer"} in {attempt.latencyMs}{" "}
                        ms <span class="mono">{attempt.response.slice(0, 120)}</span>
                      </li>
                    ))}
                  </ol>
                </td>
                <td>
                  <button
                    type="button"
                    aria-label={`Redeliver ${e.id}`}
                    onClick={() =>
                      void call(
                        "POST",
                        `${pathOf(props.name)}/events/${encodeURIComponent(e.id)}/redeliver`,
                      ).then(
                        () => {
                          setMessage(`Event ${e.id} is pending again.`);
                          events.refresh();
                        },
                        (error: unknown) => setMessage(messageOf(error)),
                      )
                    }
                  >
                    Redeliver
                  </button>
                </td>
              </tr>
            ))}
            {events.data && events.data.length === 0 && (
              <tr>
                <td colSpan={5}>No deliveries yet.</td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
    </section>
  );
}
