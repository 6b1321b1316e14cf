// The replication credential: peers present it as a bearer token on every peer request;
// it is compared in constant time and never logged.
import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { regionNamePattern } from "../config/config-schema.ts";
import { OciError } from "../oci/oci-error.ts";

/**
 * The header in which a replica names its own region on its peer requests: a peer that
 * hears from a replica knows it is up, and stops waiting out its retry delay for it.
 */
export const peerRegionHeader = "x-meridian-peer-region";

/** The region a peer request names itself from, if the header holds a region name. */
export function callerRegion(req: IncomingMessage): string | undefined {
  const value = req.headers[peerRegionHeader];
  return typeof value === "string" && regionNamePattern.test(value) ? value : undefined;
}

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
