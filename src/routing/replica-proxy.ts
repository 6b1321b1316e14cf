// Proxying for the global endpoint: forwards a request to a replica and streams its answer
// back, going on to the next replica within the same request when that is safe. Reads (GET
// and HEAD without a body) go through the read relay; requests with a body through Node's
// HTTP client over pooled keep-alive agents, piped both ways with backpressure. Answers are
// marked with the replica that served them and their upload Location pinned to it.

import { Agent, type IncomingMessage, request, type ServerResponse } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import type { Logger } from "pino";
import { endToEndHeaders } from "../api/hop-by-hop.ts";
import { sendEndpointError, servedHeader } from "./endpoint-answer.ts";
import type { HealthMonitor } from "./health-monitor.ts";
import { ReadRelay, type RelayOutcome } from "./read-relay.ts";
import type { RoutableReplica } from "./replica-ranking.ts";
import { hasBody } from "./request-router.ts";
import { pinLocation } from "./sticky-upload.ts";

export interface ReplicaProxyOptions {
  /** Told of every replica that answered or failed, so that routing skips failing ones. */
  monitor: HealthMonitor;
  log: Logger;
}

export class ReplicaProxy {
  private readonly agents = new Map<string, Agent>();
  private readonly reads = new ReadRelay();

  constructor(private readonly options: ReplicaProxyOptions) {}

  /**
   * Forwards `req` (as `path`) to the first of `candidates` that answers; reads and
   * body-less writes are retried on the next one, writes with a body only go to the first.
   * Returns the region that answered, or undefined when none did (the client got a 502).
   */
  async proxy(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    candidates: readonly RoutableReplica[],
  ): Promise<string | undefined> {
    const method = req.method ?? "GET";
    // Reads are retried on the next replica; writes only when nothing of them was sent.
    const retryable = method === "GET" || method === "HEAD" || !hasBody(req);
    const attempts = retryable ? candidates : candidates.slice(0, 1);
    for (const [index, replica] of attempts.entries()) {
      const last = index === attempts.length - 1;
      const outcome = await this.forward(req, res, replica, path, last || !retryable);
      if (outcome === "done") {
        this.options.monitor.reportSuccess(replica.region);
        return replica.region;
      }
      this.options.monitor.reportFailure(replica.region);
      // The replica failed within its answer: the client got a short body, nothing to retry.
      if (outcome === "cut") return replica.region;
    }
    if (!res.headersSent) sendEndpointError(res, 502, "UNAVAILABLE", "no replica answered");
    return undefined;
  }

  close(): void {
    for (const agent of this.agents.values()) agent.destroy();
    this.reads.close();
  }

  /**
   * Forwards one request. "retry" when the replica could not be reached or answered 5xx
   * and the caller may try the next one (nothing was sent to the client then).
   */
  private async forward(
    req: IncomingMessage,
    res: ServerResponse,
    replica: RoutableReplica,
    path: string,
    final: boolean,
  ): Promise<RelayOutcome> {
    const headers = endToEndHeaders(req.headers);
    const forwardedFor = req.socket.remoteAddress ?? "";
    headers["x-forwarded-for"] = headers["x-forwarded-for"]
      ? `${headers["x-forwarded-for"]}, ${forwardedFor}`
      : forwardedFor;
    const method = req.method;
    if ((method === "GET" || method === "HEAD") && !hasBody(req)) {
      try {
        return await this.reads.relay({
          origin: replica.url,
          method,
          path,
          headers,
          res,
          final,
          answerHeaders: (head) => answerHeaders(head.headers, replica.region),
        });
      } catch (error) {
        this.options.log.warn({ replica: replica.region, err: error }, "forwarding failed");
        sendEndpointError(res, 502, "UNAVAILABLE", `replica ${replica.region} failed`);
        return "done";
      }
    }
    return this.forwardWithBody(req, res, replica, { path, headers, final });
  }

  /** Forwards a request with a body (uploads, manifest PUTs) through Node's client. */
  private forwardWithBody(
    req: IncomingMessage,
    res: ServerResponse,
    replica: RoutableReplica,
    upstreamRequest: { path: string; headers: Record<string, string | string[]>; final: boolean },
  ): Promise<"done" | "retry"> {
    const { path, headers, final } = upstreamRequest;
    return new Promise((resolve) => {
      const upstream = (replica.url.startsWith("https:") ? httpsRequest : request)(
        `${replica.url}${path}`,
        {
          method: req.method,
          headers,
          agent: this.agent(replica.url),
        },
      );
      upstream.on("response", (answer) => {
        const status = answer.statusCode ?? 502;
        if (status >= 500 && !final) {
          answer.resume();
          resolve("retry");
          return;
        }
        res.writeHead(status, answerHeaders(answer.headers, replica.region));
        answer.pipe(res);
        answer.on("end", () => resolve("done"));
        answer.on("error", () => {
          res.destroy();
          resolve("done");
        });
      });
      upstream.on("error", (error) => {
        if (!final && !res.headersSent) {
          resolve("retry");
          return;
        }
        this.options.log.warn({ replica: replica.region, err: error }, "forwarding failed");
        if (!res.headersSent)
          sendEndpointError(res, 502, "UNAVAILABLE", `replica ${replica.region} failed`);
        else res.destroy();
        resolve("done");
      });
      res.on("close", () => {
        if (!res.writableFinished) upstream.destroy();
      });
      if (req.readableEnded || req.method === "GET" || req.method === "HEAD") upstream.end();
      else req.pipe(upstream);
    });
  }

  private agent(url: string): Agent {
    let agent = this.agents.get(url);
    if (!agent) {
      agent = url.startsWith("https:")
        ? new HttpsAgent({ keepAlive: true, maxSockets: 256 })
        : new Agent({ keepAlive: true, maxSockets: 256 });
      this.agents.set(url, agent);
    }
    return agent;
  }
}

/** A replica's answer headers as the client gets them: marked, upload Location pinned. */
function answerHeaders(
  headers: Record<string, string | string[] | undefined>,
  region: string,
): Record<string, string | string[]> {
  const out = endToEndHeaders(headers);
  const location = headers.location;
  if (typeof location === "string") out.location = pinLocation(location, region);
  out[servedHeader.toLowerCase()] = region;
  return out;
}
