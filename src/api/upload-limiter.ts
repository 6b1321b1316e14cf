// Upload bodies streaming at once, per client: past the limit a request gets 429
// TOOMANYREQUESTS. The counts belong to one replica's API (the server and a global endpoint
// hosted in its process share one limiter), never to the module, so two servers in one
// process do not share or leak each other's counts.
import type { IncomingMessage } from "node:http";
import { OciError } from "../oci/oci-error.ts";

export class UploadLimiter {
  private readonly inFlight = new Map<string, number>();

  constructor(private readonly limit: number) {}

  /**
   * Counts a request that streams an upload body against its client's limit; throws
   * TOOMANYREQUESTS past it. Returns the function that releases the slot (idempotent).
   */
  admit(req: IncomingMessage, route: string, client: string): () => void {
    const length = req.headers["content-length"];
    const hasBody =
      length !== undefined ? length !== "0" : req.headers["transfer-encoding"] !== undefined;
    const streams =
      hasBody && (req.method === "PATCH" || req.method === "PUT" || req.method === "POST");
    if (!streams || (route !== "upload" && route !== "uploadStart")) return () => undefined;
    const current = this.inFlight.get(client) ?? 0;
    if (current >= this.limit) {
      throw new OciError(
        "TOOMANYREQUESTS",
        { reason: "too many concurrent uploads from this client", limit: this.limit },
        { headers: { "Retry-After": "1" } },
      );
    }
    this.inFlight.set(client, current + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.inFlight.get(client) ?? 1) - 1;
      if (left <= 0) this.inFlight.delete(client);
      else this.inFlight.set(client, left);
    };
  }

  /** Uploads counted for a client (for tests and metrics). */
  current(client: string): number {
    return this.inFlight.get(client) ?? 0;
  }
}
