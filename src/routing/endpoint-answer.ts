// What every answer of the global endpoint carries whoever produced it, and the errors
// the endpoint answers itself when no replica does.
import type { ServerResponse } from "node:http";

/** Names the replica that served a request. */
export const servedHeader = "X-Meridian-Replica";

/** The endpoint's own error, in the OCI error body. */
export function sendEndpointError(
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
): void {
  const body = JSON.stringify({ errors: [{ code, message, detail: {} }] });
  res.writeHead(status, {
    "Content-Type": "application/json",
    "Content-Length": String(Buffer.byteLength(body)),
  });
  res.end(body);
}
