// The local supervisor's API, on loopback behind a token given only to the replicas it
// runs: the home replica calls it to start a replica process for `replication create`
// and to stop one (and delete its data) once a deleted replica is drained.
//
//   POST   /replicas            {region, latitude?, longitude?} -> {endpoint, listen}
//   DELETE /replicas/<region>   204
import { randomBytes, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { z } from "zod";
import type { ReplicaEntry } from "../config/config-schema.ts";
import { replicaEndpoint } from "../config/load-config.ts";
import type { SupervisorAddress } from "../control/supervisor-client.ts";

export interface SupervisorHandlers {
  add(request: { region: string; latitude?: number; longitude?: number }): Promise<ReplicaEntry>;
  remove(region: string): Promise<void>;
}

const addBody = z
  .object({
    region: z.string().regex(/^[a-z][a-z0-9-]{0,62}$/),
    latitude: z.number().optional(),
    longitude: z.number().optional(),
  })
  .strict();

export class SupervisorApi {
  private constructor(
    private readonly server: Server,
    readonly address: SupervisorAddress,
  ) {}

  static async start(handlers: SupervisorHandlers): Promise<SupervisorApi> {
    const token = randomBytes(24).toString("hex");
    const server = createServer((req, res) => {
      handle(req, res, token, handlers).catch((error: unknown) =>
        reply(res, 500, { error: (error as Error).message }),
      );
    });
    await new Promise<void>((done, fail) => {
      server.once("error", fail);
      server.listen(0, "127.0.0.1", () => done());
    });
    const { port } = server.address() as AddressInfo;
    return new SupervisorApi(server, { url: `http://127.0.0.1:${port}`, token });
  }

  close(): Promise<void> {
    return new Promise((done) => {
      this.server.close(() => done());
      this.server.closeAllConnections();
    });
  }
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  token: string,
  handlers: SupervisorHandlers,
): Promise<void> {
  const given = Buffer.from(req.headers.authorization ?? "");
  const expected = Buffer.from(`Bearer ${token}`);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    reply(res, 401, { error: "unauthorized" });
    return;
  }
  const url = new URL(req.url ?? "/", "http://supervisor");
  if (req.method === "POST" && url.pathname === "/replicas") {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const parsed = addBody.safeParse(JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}"));
    if (!parsed.success) {
      reply(res, 400, { error: "expected {region, latitude?, longitude?}" });
      return;
    }
    try {
      const entry = await handlers.add(parsed.data);
      reply(res, 201, { endpoint: replicaEndpoint(entry), listen: entry.listen });
    } catch (error) {
      reply(res, 409, { error: (error as Error).message });
    }
    return;
  }
  const match = /^\/replicas\/([a-z][a-z0-9-]{0,62})$/.exec(url.pathname);
  if (req.method === "DELETE" && match?.[1]) {
    await handlers.remove(match[1]);
    res.writeHead(204).end();
    return;
  }
  reply(res, 404, { error: "not found" });
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { "Content-Type": "application/json" }).end(JSON.stringify(body));
}
