// In-process serving: a global endpoint hosted in a replica's process hands the requests
// it routes to that replica straight to the replica's API handler (no second hop, no copy
// of the bytes). The answer must still look like a proxied one: marked with the replica,
// its upload Location pinned, and a 5xx of a read held back so that the next replica can
// answer instead. The handler writes through Node's response API from many places, so
// that is done by the endpoint's response class, EndpointResponse, which the endpoint's
// server creates for every request (Node's `ServerResponse` server option).
import {
  type IncomingMessage,
  type OutgoingHttpHeader,
  type OutgoingHttpHeaders,
  ServerResponse,
} from "node:http";
import { servedHeader } from "./endpoint-answer.ts";
import { pinLocation } from "./sticky-upload.ts";

/** A replica in the endpoint's own process, reached by calling its API handler. */
export interface LocalReplica {
  region: string;
  handle(req: IncomingMessage, res: ServerResponse): void;
}

type HeaderFields = OutgoingHttpHeaders | OutgoingHttpHeader[];
type WriteCallback = (error: Error | null | undefined) => void;

/** How a response carries the answer of the replica in this process. */
interface LocalAnswer {
  region: string;
  /** Hold a 5xx answer back instead of sending it. */
  holdErrors: boolean;
  /** A held answer has ended: nothing of it was sent and the response is clean again. */
  onHeld(): void;
}

/**
 * The responses of the global endpoint's server. Until `carryLocal` is called they behave
 * exactly as Node's; after it, the head of the answer is marked and pinned as it is
 * written, and a held 5xx answer (head and body) is dropped.
 */
export class EndpointResponse extends ServerResponse {
  private local: LocalAnswer | undefined;
  private holding = false;

  carryLocal(answer: LocalAnswer): void {
    this.local = answer;
  }

  override writeHead(
    statusCode: number,
    reasonOrFields?: string | HeaderFields,
    fields?: HeaderFields,
  ): this {
    const reason = typeof reasonOrFields === "string" ? reasonOrFields : undefined;
    const given = typeof reasonOrFields === "string" ? fields : (reasonOrFields ?? fields);
    if (!this.local) {
      return reason === undefined
        ? super.writeHead(statusCode, given)
        : super.writeHead(statusCode, reason, given);
    }
    if (this.holding) return this;
    if (this.local.holdErrors && statusCode >= 500) {
      this.holding = true;
      return this;
    }
    // The fields join the ones already set (as Node itself merges them), so that the
    // Location is pinned in one place whichever way the handler gave it.
    if (Array.isArray(given)) {
      for (let i = 0; i + 1 < given.length; i += 2) {
        this.setHeader(String(given[i]), given[i + 1] as OutgoingHttpHeader);
      }
    } else if (given) {
      for (const [name, value] of Object.entries(given)) {
        if (value !== undefined) this.setHeader(name, value);
      }
    }
    const location = this.getHeader("location");
    if (typeof location === "string")
      this.setHeader("location", pinLocation(location, this.local.region));
    this.setHeader(servedHeader, this.local.region);
    return reason === undefined ? super.writeHead(statusCode) : super.writeHead(statusCode, reason);
  }

  override write(
    chunk: unknown,
    encodingOrCallback?: BufferEncoding | WriteCallback,
    callback?: WriteCallback,
  ): boolean {
    if (this.holds()) {
      const done = typeof encodingOrCallback === "function" ? encodingOrCallback : callback;
      if (done) process.nextTick(done, null);
      return true;
    }
    return typeof encodingOrCallback === "function"
      ? super.write(chunk, encodingOrCallback)
      : encodingOrCallback === undefined
        ? super.write(chunk, callback)
        : super.write(chunk, encodingOrCallback, callback);
  }

  override end(
    chunkOrCallback?: unknown,
    encodingOrCallback?: BufferEncoding | (() => void),
    callback?: () => void,
  ): this {
    if (this.holds()) {
      this.release();
      return this;
    }
    if (typeof chunkOrCallback === "function") return super.end(chunkOrCallback as () => void);
    if (typeof encodingOrCallback === "function")
      return super.end(chunkOrCallback, encodingOrCallback);
    if (encodingOrCallback === undefined) return super.end(chunkOrCallback, callback);
    return super.end(chunkOrCallback, encodingOrCallback, callback);
  }

  /**
   * Whether what is written now is dropped. An answer that never called writeHead gets
   * its head from inside write or end (through writeHead, so it is marked and pinned
   * there); a 5xx one must be held before Node writes that head.
   */
  private holds(): boolean {
    if (this.local?.holdErrors && !this.headersSent && this.statusCode >= 500) this.holding = true;
    return this.holding;
  }

  /** The held answer is over: the response is left as if nothing had been written. */
  private release(): void {
    const local = this.local;
    this.local = undefined;
    this.holding = false;
    for (const name of this.getHeaderNames()) this.removeHeader(name);
    this.statusCode = 200;
    local?.onHeld();
  }
}

/**
 * Hands a request to the replica in this process. With `holdErrors`, a 5xx answer is held
 * back instead ("retry"): nothing of it reaches the client, and the response is left clean
 * for another replica's answer.
 */
export function serveLocally(
  req: IncomingMessage,
  res: EndpointResponse,
  local: LocalReplica,
  options: { path: string; holdErrors: boolean },
): Promise<"done" | "retry"> {
  return new Promise((resolve) => {
    req.url = options.path;
    res.carryLocal({
      region: local.region,
      holdErrors: options.holdErrors,
      onHeld: () => resolve("retry"),
    });
    res.once("finish", () => resolve("done"));
    res.once("close", () => resolve("done"));
    local.handle(req, res);
  });
}
