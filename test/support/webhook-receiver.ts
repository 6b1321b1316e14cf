// A webhook receiver for end-to-end tests: a node:http server on 127.0.0.1 (OS-picked
// port) that records every request it gets and answers as the test says, including not
// at all (a receiver that never answers).
import { once } from "node:events";
import { createServer, type IncomingHttpHeaders, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface ReceivedEvent {
  headers: IncomingHttpHeaders;
  body: string;
  json: Record<string, unknown>;
  /** What the handler answered (undefined while it hangs). */
  status?: number;
}

/** A status to answer with, or "hang" to never answer. */
export type Handler = (event: ReceivedEvent) => Promise<number | "hang"> | number | "hang";

export interface WebhookReceiver {
  readonly url: string;
  readonly received: ReceivedEvent[];
  /** The requests whose body has `eventKey`. */
  byKey(eventKey: string): ReceivedEvent[];
  setHandler(handler: Handler): void;
  close(): Promise<void>;
}

export async function startReceiver(handler: Handler = () => 200): Promise<WebhookReceiver> {
  let current = handler;
  const received: ReceivedEvent[] = [];
  const hanging = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      let json: Record<string, unknown> = {};
      try {
        json = JSON.parse(body) as Record<string, unknown>;
      } catch {
        // recorded as received; the test's assertions say what was wrong
      }
      const event: ReceivedEvent = { headers: req.headers, body, json };
      received.push(event);
      Promise.resolve(current(event)).then(
        (status) => {
          if (status === "hang") {
            hanging.add(res);
            return;
          }
          event.status = status;
          res.writeHead(status, { "Content-Type": "text/plain" });
          res.end(`answered ${status}`);
        },
        (error: unknown) => {
          event.status = 599;
          res.writeHead(500);
          res.end(String(error));
        },
      );
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    byKey: (eventKey) => received.filter((e) => e.json.eventKey === eventKey),
    setHandler(next) {
      current = next;
    },
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
