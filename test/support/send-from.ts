// A request from a given loopback source address (127.0.0.2, 127.0.0.3, ...), so that
// the global endpoint's CIDR rules place the client in a region.
import { request } from "node:http";

/** A request through the endpoint from a given source address. */
export function sendFrom(
  url: string,
  localAddress: string,
  init: { method?: string; headers?: Record<string, string>; body?: Buffer } = {},
): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: init.method ?? "GET",
        localAddress,
        headers: {
          Connection: "close",
          ...(init.body ? { "Content-Length": String(init.body.length) } : {}),
          ...init.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          const headers: Record<string, string> = {};
          for (const [name, value] of Object.entries(res.headers)) headers[name] = String(value);
          resolve({ status: res.statusCode ?? 0, headers, body: Buffer.concat(chunks) });
        });
      },
    );
    req.on("error", reject);
    req.end(init.body);
  });
}
