// For the replication unit tests: a replica's peer API served on loopback over a test
// registry, and a PeerClient for it. `beforeServe` sees each request's path under the
// peer API first (to count requests, or hold one until a condition).
import type { AddressInfo } from "node:net";
import pino, { type Logger } from "pino";
import { createApiServer } from "../api/api-server.ts";
import type { RegistryFixture } from "../registry/registry-test-fixture.ts";
import { ChangeWaiter } from "./change-waiter.ts";
import { createPeerApi } from "./peer-api.ts";
import { PeerClient } from "./peer-client.ts";

export interface PeerApiTestServer {
  /** A client of the served peer, as region eastus. */
  client: PeerClient;
  close(): Promise<void>;
}

export async function startPeerApiServer(options: {
  peer: RegistryFixture;
  secret: string;
  log?: Logger;
  beforeServe?: (path: string) => Promise<void> | void;
  /** Told the region each peer request names itself from. */
  heardFrom?: (region: string) => void;
}): Promise<PeerApiTestServer> {
  const { peer, secret, beforeServe } = options;
  const peerApi = createPeerApi({
    secret,
    state: peer.registry.state,
    waiter: await ChangeWaiter.attach(peer.registry.state),
    reconcile: async () => 0,
    heardFrom: options.heardFrom,
  });
  const server = createApiServer({
    registry: peer.registry,
    log: options.log ?? pino({ level: "silent" }),
    extensions: [
      {
        prefix: peerApi.prefix,
        handle: async (req, res, ctx) => {
          await beforeServe?.(ctx.path.slice(peerApi.prefix.length));
          await peerApi.handle(req, res, ctx);
        },
      },
    ],
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const client = new PeerClient({ region: "eastus", url: `http://127.0.0.1:${port}` }, secret);
  return {
    client,
    close: async () => {
      client.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
