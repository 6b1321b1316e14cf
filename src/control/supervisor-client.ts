// How the home replica asks the local supervisor (`meridian up`) to start or stop the
// process of a replica: a small HTTP API on loopback behind a token that the supervisor
// gives every replica it starts. Without a supervisor, replicas are provisioned by the
// join flow instead.

export interface SupervisorAddress {
  url: string;
  token: string;
}

export interface ProvisionRequest {
  region: string;
  latitude?: number | undefined;
  longitude?: number | undefined;
}

const timeoutMs = 15_000;

/** Starts a replica process for `region`; resolves its regional endpoint. */
export async function provision(
  supervisor: SupervisorAddress,
  request: ProvisionRequest,
): Promise<{ endpoint: string }> {
  const body = (await call(supervisor, "POST", "/replicas", request)) as { endpoint?: unknown };
  if (typeof body?.endpoint !== "string") throw new Error("the supervisor sent no endpoint");
  return { endpoint: body.endpoint };
}

/** Stops the replica process of `region` and removes its data. */
export async function deprovision(supervisor: SupervisorAddress, region: string): Promise<void> {
  await call(supervisor, "DELETE", `/replicas/${encodeURIComponent(region)}`);
}

async function call(
  supervisor: SupervisorAddress,
  method: string,
  path: string,
  body?: unknown,
): Promise<unknown> {
  const response = await fetch(`${supervisor.url}${path}`, {
    method,
    headers: { Authorization: `Bearer ${supervisor.token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  if (!response.ok) {
    throw new Error(`the local supervisor answered ${response.status}: ${text.slice(0, 200)}`);
  }
  return text === "" ? undefined : JSON.parse(text);
}
