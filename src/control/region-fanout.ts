// Runs an admin request in every region (or one): this replica answers for itself and
// sends the same request, marked `local=1` and with the caller's credentials, to each
// peer's regional endpoint. A region that cannot be reached is reported, not fatal.
import type { IncomingMessage } from "node:http";

export interface PeerEndpoint {
  region: string;
  url: string;
}

export type RegionAnswer<T> = ({ region: string } & T) | { region: string; error: string };

export interface FanoutOptions<T> {
  self: string;
  peers: readonly PeerEndpoint[];
  /** Only this region (undefined: every region). */
  only: string | undefined;
  /** This replica's own answer. */
  local: () => Promise<T>;
  /** The request a peer gets: method, path with query (local=1 is added), JSON body. */
  method: string;
  path: string;
  body?: unknown;
  /** The caller's request, whose Authorization header the peers get. */
  req: IncomingMessage;
  timeoutMs: number;
}

export async function fanOut<T extends object>(
  options: FanoutOptions<T>,
): Promise<RegionAnswer<T>[]> {
  const regions = [options.self, ...options.peers.map((p) => p.region)];
  if (options.only !== undefined && !regions.includes(options.only)) return [];
  const wanted = (region: string) => options.only === undefined || options.only === region;
  const answers: Promise<RegionAnswer<T>>[] = [];
  if (wanted(options.self)) {
    answers.push(
      options.local().then(
        (value) => ({ region: options.self, ...value }),
        (error: unknown) => ({ region: options.self, error: describe(error) }),
      ),
    );
  }
  for (const peer of options.peers) {
    if (wanted(peer.region)) answers.push(askPeer(peer, options));
  }
  return Promise.all(answers);
}

async function askPeer<T>(peer: PeerEndpoint, options: FanoutOptions<T>): Promise<RegionAnswer<T>> {
  const url = new URL(options.path, peer.url);
  url.searchParams.set("local", "1");
  const headers: Record<string, string> = { "Content-Type": "application/json" };
  const authorization = options.req.headers.authorization;
  if (authorization) headers.Authorization = authorization;
  try {
    const response = await fetch(url, {
      method: options.method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: AbortSignal.timeout(options.timeoutMs),
    });
    const text = await response.text();
    if (!response.ok)
      return { region: peer.region, error: `${response.status} ${text.slice(0, 200)}` };
    const parsed = JSON.parse(text) as { regions?: RegionAnswer<T>[] };
    const own = parsed.regions?.find((answer) => answer.region === peer.region);
    return own ?? { region: peer.region, error: "the replica did not answer for itself" };
  } catch (error) {
    return { region: peer.region, error: describe(error) };
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error.cause as { code?: string } | undefined)?.code;
    return cause ? `${error.message} (${cause})` : error.message;
  }
  return String(error);
}
