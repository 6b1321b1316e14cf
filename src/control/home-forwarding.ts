// Control-plane writes are made by the home replica: another replica forwards such a
// request there unchanged (the caller's credentials included) and relays the answer. While
// the home replica cannot be reached the write fails with 503 naming it; nothing else of
// the registry depends on it.
import { request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import { request as httpsRequest } from "node:https";
import { pipeline } from "node:stream/promises";
import { OciError } from "../oci/oci-error.ts";

export interface HomeReplica {
  region: string;
  /** Base URL of the home replica's regional endpoint (possibly through a WAN link). */
  url: string;
}

/** How long the home replica may take to start answering. */
const answerTimeoutMs = 10_000;
// The portal's session cookie and CSRF header too: the home replica shares the signing key.
const forwardedHeaders = [
  "authorization",
  "cookie",
  "x-meridian-csrf",
  "content-type",
  "content-length",
  "x-request-id",
];

export async function forwardToHome(
  home: HomeReplica,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const target = new URL(req.url ?? "/", home.url);
  const headers: Record<string, string> = {};
  for (const name of forwardedHeaders) {
    const value = req.headers[name];
    if (typeof value === "string") headers[name] = value;
  }
  const send = target.protocol === "https:" ? httpsRequest : httpRequest;
  const answer = await new Promise<IncomingMessage>((resolve, reject) => {
    const outgoing = send(target, { method: req.method, headers }, resolve);
    outgoing.setTimeout(answerTimeoutMs, () =>
      outgoing.destroy(new Error(`no answer in ${answerTimeoutMs} ms`)),
    );
    outgoing.on("error", reject);
    pipeline(req, outgoing).catch(reject);
  }).catch((error: unknown) => {
    throw new OciError(
      "UNAVAILABLE",
      {
        reason: `the home replica ${home.region} cannot be reached (${describe(error)}); control-plane writes wait for it, pushes and pulls do not`,
        home: home.region,
      },
      { cause: error },
    );
  });
  const relayed: Record<string, string> = {};
  for (const name of ["content-type", "content-length", "www-authenticate", "retry-after"]) {
    const value = answer.headers[name];
    if (typeof value === "string") relayed[name] = value;
  }
  res.writeHead(answer.statusCode ?? 502, relayed);
  await pipeline(answer, res);
}

function describe(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  if (code === "ECONNREFUSED") return "connection refused";
  if (code === "ECONNRESET") return "connection reset";
  return error instanceof Error ? error.message : String(error);
}
