// The global endpoint's relay for reads (GET and HEAD without a body): one undici Agent
// (a keep-alive pool per replica) carries the request, and the answer's body goes to the
// client chunk by chunk as undici parses it, with backpressure both ways: a client that
// cannot take more pauses the replica's connection. undici frames the body (length,
// chunked, close-delimited, HEAD, 204/304); this file decides what a failure means for the
// client and for routing.
//
// Measured against the hand-written HTTP/1.1 client it replaces, in one run on the 2-core
// development machine (2026-12-01, load average 6-8 from other jobs; two proxy-mode
// endpoints in one process in front of one replica, clients in worker threads; two runs of
// 5 rounds each in rotating order: the two runs' medians, then the range of every round;
// bench/relay-compare.ts, removed with the hand-written client after commit 94d81ba),
// undici / hand-written:
//   manifest GET, c=32:       1,768-2,051 / 1,401-1,625 req/s (runs 929-3,123 / 755-2,847)
//   256 MiB pull, 1 GET:        190-196 / 203-213 MB/s (runs 133-226 / 153-233)
//   256 MiB pull, 4 GETs:       253-262 / 232-233 MB/s (runs 167-485 / 173-471)
//   endpoint CPU per GB (1 GET): 1.69-2.08 / 1.30-1.75 s; per manifest GET 232-265 / 289-292 us
// Pulls the same within the noise, small requests faster. undici spends about 0.3 s more CPU
// per GB (it copies every chunk into llhttp's WebAssembly memory to parse it), which a
// machine where the endpoint, not the scheduler, is the limit could show as throughput.
import type { ServerResponse } from "node:http";
import { Agent, type Dispatcher } from "undici";

/** An idle connection unused this long is closed (replicas keep theirs for 65 s). */
const idleTimeoutMs = 30_000;

/** Errors of a connection that failed before any answer, as a kept one the replica closed does. */
const staleConnectionCodes = new Set(["UND_ERR_SOCKET", "ECONNRESET", "EPIPE"]);

/** The replica's answer head, as `RelayRequest.answerHeaders` sees it. */
export interface ResponseHead {
  status: number;
  /** Lower-case names; a name sent more than once keeps every value. */
  headers: Record<string, string | string[]>;
}

export interface RelayRequest {
  /** The replica's base URL, e.g. http://127.0.0.1:5001. */
  origin: string;
  method: "GET" | "HEAD";
  /** Path and query. */
  path: string;
  /** Request headers to send (hop-by-hop ones already removed). */
  headers: Record<string, string | string[]>;
  res: ServerResponse;
  /** Whether this is the last replica tried: then even a 5xx goes to the client. */
  final: boolean;
  /** The headers to answer the client with, made from the replica's. */
  answerHeaders(head: ResponseHead): Record<string, string | string[]>;
}

/**
 * done: the client got an answer (or its own connection went away); retry: try another
 * replica; cut: the replica failed after its answer began, so the client's connection was
 * cut (a short body) and the replica counts as failing.
 */
export type RelayOutcome = "done" | "retry" | "cut";

export class ReadRelay {
  /**
   * A replica that sends nothing for this long (before its answer or within its body)
   * while the client is ready for more is given up on: a read not begun goes to the next
   * replica; one begun is cut, so the client sees a short body rather than a hang.
   */
  private readonly stallMs: number;
  private readonly agent: Agent;

  /** ca: the certificates trusted for HTTPS replicas, instead of the system's ones. */
  constructor(options: { stallMs?: number; ca?: Buffer } = {}) {
    this.stallMs = options.stallMs ?? 30_000;
    this.agent = new Agent({
      keepAliveTimeout: idleTimeoutMs,
      keepAliveMaxTimeout: idleTimeoutMs,
      headersTimeout: this.stallMs,
      bodyTimeout: this.stallMs,
      connectTimeout: this.stallMs,
      ...(options.ca ? { connect: { ca: options.ca } } : {}),
    });
  }

  /** Relays one read; rejects only when the replica failed and nothing was sent yet. */
  async relay(request: RelayRequest): Promise<RelayOutcome> {
    try {
      return await this.exchange(request, true);
    } catch (error) {
      // A kept connection the replica closed meanwhile fails before any answer: a read is
      // safe to send again, once (undici then takes another connection or opens one).
      if (!(error instanceof StaleConnectionError)) throw error;
    }
    return this.exchange(request, false);
  }

  close(): void {
    this.agent.destroy().catch(() => {});
  }

  /** One attempt; rejects with undici's error when it failed before the answer began. */
  private exchange(request: RelayRequest, firstTry: boolean): Promise<RelayOutcome> {
    const { res } = request;
    const headers = { ...request.headers };
    // undici refuses Expect; a read without a body has nothing to wait for anyway.
    delete headers.expect;
    return new Promise<RelayOutcome>((resolve, reject) => {
      let controller: Dispatcher.DispatchController | undefined;
      let started = false;
      let settled = false;
      let waitingForDrain = false;
      const finish = (outcome: RelayOutcome | Error) => {
        if (settled) return;
        settled = true;
        res.off("drain", onDrain);
        res.off("close", onClientClose);
        if (outcome instanceof Error) reject(outcome);
        else resolve(outcome);
      };
      const onDrain = () => {
        waitingForDrain = false;
        controller?.resume();
      };
      const onClientClose = () => {
        if (res.writableFinished) return;
        controller?.abort(new Error("the client went away"));
        finish("done");
      };
      res.on("drain", onDrain);
      res.on("close", onClientClose);
      const handler: Dispatcher.DispatchHandler = {
        onRequestStart: (given) => {
          controller = given;
          if (settled) given.abort(new Error("the client went away"));
        },
        onResponseStart: (_, status, replyHeaders) => {
          if (settled) return;
          if (status >= 500 && !request.final) {
            controller?.abort(new Error(`the replica answered ${status}`));
            finish("retry");
            return;
          }
          started = true;
          const head = { status, headers: replyHeaders as ResponseHead["headers"] };
          res.writeHead(status, request.answerHeaders(head));
        },
        onResponseData: (_, chunk) => {
          if (settled) return;
          // A slow client is no stalled replica: undici's body clock stops while paused.
          if (!res.write(chunk) && !waitingForDrain) {
            waitingForDrain = true;
            controller?.pause();
          }
        },
        onResponseEnd: () => {
          if (settled) return;
          res.end();
          finish("done");
        },
        onResponseError: (_, error) => {
          if (settled) return;
          if (started) {
            // The answer had begun: the client's connection is cut so it sees a short body.
            res.destroy(error);
            finish("cut");
          } else if (firstTry && isStaleConnection(error)) {
            finish(new StaleConnectionError(error));
          } else if (!request.final) finish("retry");
          else finish(error);
        },
      };
      this.agent.dispatch(
        {
          origin: request.origin,
          method: request.method,
          path: request.path,
          headers,
        },
        handler,
      );
    });
  }
}

/** A connection failed before answering (a kept one the replica closed while idle). */
class StaleConnectionError extends Error {
  constructor(cause: Error) {
    super(`connection failed before the answer: ${cause.message}`, { cause });
    this.name = "StaleConnectionError";
  }
}

function isStaleConnection(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && staleConnectionCodes.has(code);
}
