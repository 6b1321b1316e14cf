// `meridian serve --join <home endpoint> --join-token T --region R`: the first start of a
// replica on another machine asks the home replica to let it join, and keeps what it
// receives (the peer credential, the token signing key, who the home replica is) in its
// data folder, mode 0600, so that every later start needs no token.
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Config } from "../config/config-schema.ts";
import type { JoinAnswer } from "../control/join-api.ts";
import { unreachableReason } from "../control/unreachable-reason.ts";

interface JoinedState {
  homeUrl: string;
  homeRegion: string;
  secret: string;
  signingKey?: string | undefined;
}

export interface JoinRequest {
  home: string;
  token: string | undefined;
}

/** The configuration of a replica that joined: its home, its peer, its secrets. */
export async function joinedConfig(config: Config, request: JoinRequest): Promise<Config> {
  if (!config.region) throw new Error("--join needs --region: the region this replica serves");
  const dataDir = resolve(config.data);
  const statePath = join(dataDir, "join.json");
  const state = (await readState(statePath)) ?? (await askToJoin(config, request, statePath));
  return {
    ...config,
    homeReplica: { region: state.homeRegion, url: state.homeUrl },
    peers: [{ region: state.homeRegion, url: state.homeUrl }],
    replication: { ...config.replication, secret: state.secret },
    auth: {
      ...config.auth,
      ...(state.signingKey && !config.auth.signingKey ? { signingKey: state.signingKey } : {}),
    },
  };
}

async function readState(path: string): Promise<JoinedState | undefined> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as JoinedState;
  } catch {
    return undefined;
  }
}

async function askToJoin(
  config: Config,
  request: JoinRequest,
  statePath: string,
): Promise<JoinedState> {
  if (!request.token) {
    throw new Error(
      "--join needs --join-token the first time (printed by meridian replication create)",
    );
  }
  const homeUrl = request.home.replace(/\/+$/, "");
  const endpoint = config.endpoint ?? `http://${config.listen}`;
  const url = `${homeUrl}/_meridian/join`;
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ region: config.region, token: request.token, endpoint }),
    signal: AbortSignal.timeout(15_000),
  }).catch((error: unknown) => {
    throw new Error(`cannot join: ${unreachableReason(error, url)}`);
  });
  const text = await response.text();
  if (!response.ok) {
    const reason = /"reason":"([^"]*)"/.exec(text)?.[1] ?? text.slice(0, 200);
    throw new Error(`cannot join: ${homeUrl} answered ${response.status}: ${reason}`);
  }
  const answer = JSON.parse(text) as JoinAnswer;
  const state: JoinedState = {
    homeUrl,
    homeRegion: answer.home.region,
    secret: answer.secret,
    signingKey: answer.signingKey,
  };
  await mkdir(resolve(config.data), { recursive: true });
  await writeFile(`${statePath}.tmp`, JSON.stringify(state), { mode: 0o600 });
  await rename(`${statePath}.tmp`, statePath);
  return state;
}
