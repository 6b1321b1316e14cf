// On a node other than the leader: the requests only the leader answers (the control plane,
// status, metrics, the portal, and the peer calls that run replication work) are sent on
// to the leader's private listener and its answer relayed, headers and body streamed both
// ways. The client's address travels in X-Forwarded-For, which the leader's private
// listener believes (its only callers are the replica's own workers on loopback).

import type { IncomingMessage, ServerResponse } from "node:http";
import { pipeline } from "node:stream/promises";
import type { ApiExtension } from "../api/api-server.ts";
import { endToEndHeaders } from "../api/hop-by-hop.ts";
import { OciError } from "../oci/oci-error.ts";

/** How long the leader may take to start answering (a drain waits up to a minute). */
const answerTimeoutMs = 120_000;

export function forwardToLeader(prefix: string, leaderUrl: () => string | undefined): ApiExtension {
  return {
    prefix,
    async handle(req, res, ctx) {
      const base = leaderUrl();
      if (!base) {
        throw new OciError("UNAVAILABLE", {
          reason: "the replica's leading worker is starting; try again in a moment",
        });
      }
      await relay(base, req, res, ctx.requestId);
    },
  };
}

async function relay(
  base: string,
  req: IncomingMessage,
  res: ServerResponse,
  requestId: string,
): Promise<void> {
  const headers = endToEndHeaders(req.headers);
  const peer = req.socket.remoteAddress ?? "";
  const forwarded = req.headers["x-forwarded-for"];
  headers["x-forwarded-for"] = forwarded ? `${String(forwarded)}, ${peer}` : peer;
  // One id for the request in both workers' logs.
  headers["x-request-id"] = requestId;
  const method = req.method ?? "GET";
  const hasBody = method !== "GET" && method !== "HEAD";
  // Loaded with the first forwarded request: a replica of one process never needs it.
  const { request } = await import("undici");
  let answer: Awaited<ReturnType<typeof request>>;
  try {
    answer = await request(new URL(req.url ?? "/", base), {
      method: method as "GET",
      headers,
      body: hasBody ? req : undefined,
      headersTimeout: answerTimeoutMs,
      bodyTimeout: answerTimeoutMs,
    });
  } catch (error) {
    throw new OciError(
      "UNAVAILABLE",
      { reason: `the replica's leading worker did not answer (${(error as Error).message})` },
      { cause: error },
    );
  }
  res.writeHead(answer.statusCode, endToEndHeaders(answer.headers));
  await pipeline(answer.body, res);
}
