// How CLI commands reach a registry's admin API: the endpoint from --registry,
// $MERIDIAN_REGISTRY, the last `meridian login`, or the home replica of ./meridian.yaml;
// credentials from $MERIDIAN_USERNAME/$MERIDIAN_PASSWORD or the stored login. A failure
// becomes one line (the OCI error's message and reason), never a stack trace.
import { access } from "node:fs/promises";
import { loadConfig, replicaEndpoint } from "../config/load-config.ts";
import { unreachableReason } from "../control/unreachable-reason.ts";
import { currentLogin, storedAuthorization } from "./login-store.ts";

export class AdminClient {
  private constructor(
    readonly endpoint: string,
    private readonly authorization: string | undefined,
  ) {}

  /**
   * `configFile`: a topology file named on the command line, whose home replica then comes
   * before the environment and the last login.
   */
  static async resolve(registry: string | undefined, configFile?: string): Promise<AdminClient> {
    const endpoint = normalise(
      registry ??
        (configFile ? await localHome(configFile) : undefined) ??
        process.env.MERIDIAN_REGISTRY ??
        (await currentLogin()) ??
        (await localHome()),
    );
    const { MERIDIAN_USERNAME: name, MERIDIAN_PASSWORD: password } = process.env;
    // Another replica of the registry logged in to takes the same credentials.
    const current = await currentLogin();
    const authorization =
      name && password
        ? `Basic ${Buffer.from(`${name}:${password}`).toString("base64")}`
        : ((await storedAuthorization(endpoint)) ??
          (current ? await storedAuthorization(current) : undefined));
    return new AdminClient(endpoint, authorization);
  }

  /** Sends a request to the admin API; the parsed answer, or throws one readable line. */
  request(method: string, path: string, body?: unknown, timeoutMs?: number): Promise<unknown> {
    return this.send(method, `/_meridian/admin/${path}`, body, timeoutMs);
  }

  /** Sends a request to a path of the replica with the admin credentials. */
  async send(method: string, path: string, body?: unknown, timeoutMs = 30_000): Promise<unknown> {
    const url = `${this.endpoint}${path}`;
    const headers: Record<string, string> = { "Content-Type": "application/json" };
    if (this.authorization) headers.Authorization = this.authorization;
    const response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    }).catch((error: unknown) => {
      throw new Error(unreachableReason(error, url));
    });
    const text = await response.text();
    if (!response.ok) {
      const hint =
        response.status === 401
          ? `; log in with meridian login ${this.endpoint} (or set MERIDIAN_USERNAME and MERIDIAN_PASSWORD)`
          : "";
      throw new AdminRequestError(
        response.status,
        `${describeError(this.endpoint, response.status, text)}${hint}`,
      );
    }
    return text === "" ? undefined : JSON.parse(text);
  }
}

/** The home replica of the topology file in the working folder, as `npm start` runs it. */
async function localHome(file = "meridian.yaml"): Promise<string> {
  const missing = new Error(
    "no registry to talk to: pass --registry <endpoint>, set MERIDIAN_REGISTRY, or run meridian login <endpoint>",
  );
  if (
    !(await access(file).then(
      () => true,
      () => false,
    ))
  )
    throw missing;
  const config = await loadConfig({ file, env: {} }, { topologyOnly: true });
  const home = config.replicas?.find((r) => r.home);
  if (!home) throw missing;
  return replicaEndpoint(home);
}

function normalise(endpoint: string): string {
  const withScheme = /^https?:\/\//.test(endpoint) ? endpoint : `http://${endpoint}`;
  return withScheme.replace(/\/+$/, "");
}

/** An answer of the admin API other than success, said in one line. */
export class AdminRequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "AdminRequestError";
  }
}

/**
 * The error's reason alone when the registry gave one (it names what was wrong), else the
 * endpoint with the status and the OCI code and message.
 */
function describeError(endpoint: string, status: number, text: string): string {
  try {
    const body = JSON.parse(text) as {
      errors?: { code?: string; message?: string; detail?: { reason?: string } }[];
    };
    const first = body.errors?.[0];
    if (first?.detail?.reason) return first.detail.reason;
    if (first) {
      return `${endpoint}: ${status} ${first.code ?? ""} ${first.message ?? ""}`.replace(
        /\s+/g,
        " ",
      );
    }
  } catch {
    // not an OCI error body
  }
  return `${endpoint}: ${status} ${text.slice(0, 200)}`;
}
