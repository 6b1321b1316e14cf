// The client request a write is recorded with: what a webhook's `request` names (ACR's
// id, host, method and user agent). Header values are cut to a bounded length, since
// they travel in every region's change log.
import type { IncomingMessage } from "node:http";
import type { ChangeRequest } from "../metadata/metadata-store.ts";

const maxHeaderChars = 256;

export function changeRequestOf({
  req,
  requestId,
}: {
  req: IncomingMessage;
  requestId: string;
}): ChangeRequest {
  return {
    id: requestId,
    host: (req.headers.host ?? "").slice(0, maxHeaderChars),
    method: req.method ?? "",
    useragent: (req.headers["user-agent"] ?? "").slice(0, maxHeaderChars),
  };
}
