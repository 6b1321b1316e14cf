// The replication credential: peers present it as a bearer token on every peer request;
// it is compared in constant time and never logged.
import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { OciError } from "../oci/oci-error.ts";

export function peerAuthorization(secret: string): string {
  return `Bearer ${secret}`;
}

/** Throws UNAUTHORIZED unless the request carries the replication credential. */
export function requirePeer(req: IncomingMessage, secret: string): void {
  const header = req.headers.authorization ?? "";
  const expected = Buffer.from(peerAuthorization(secret));
  const given = Buffer.from(header);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new OciError(
      "UNAUTHORIZED",
      { reason: "replication credential required" },
      {
        headers: { "WWW-Authenticate": 'Bearer realm="meridian-replication"' },
      },
    );
  }
}
