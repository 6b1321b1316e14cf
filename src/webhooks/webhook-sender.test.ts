// One delivery attempt against a receiver on 127.0.0.1: a name is resolved and the
// connection made to the checked address (the Host header still names the host), the
// body is signed, a refused address is never connected to, a slow receiver times out.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import type { Webhook } from "./webhook-record.ts";
import { sendEvent, signatureOf } from "./webhook-sender.ts";

const event = { id: "e1", eventKey: "k1", action: "push", payload: '{"action":"push"}' };
const webhook = (uri: string, extra: Partial<Webhook> = {}): Webhook => ({
  name: "h",
  uri,
  actions: ["push"],
  headers: { "X-Custom": "yes" },
  status: "enabled",
  ...extra,
});

describe("webhook sender", () => {
  it("resolves the name, connects to the checked address, signs the body", async () => {
    const seen: IncomingHttpHeaders[] = [];
    const server = createServer((req, res) => {
      seen.push(req.headers);
      req.resume();
      req.on("end", () => res.end("thanks"));
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const { port } = server.address() as AddressInfo;
    try {
      // localhost may resolve to ::1 first: every checked address is offered to the connect.
      const attempt = await sendEvent(
        webhook(`http://localhost:${port}/hook`, { secret: "k" }),
        event,
        { denyPrivateNetworks: false, timeoutMs: 5000 },
      );
      assert.equal(attempt.status, 200, attempt.excerpt);
      assert.equal(attempt.excerpt, "thanks");
      assert.equal(seen[0]?.host, `localhost:${port}`);
      assert.equal(seen[0]?.["x-meridian-signature"], signatureOf("k", event.payload));
      assert.equal(seen[0]?.["x-custom"], "yes");
      assert.equal(seen[0]?.["x-meridian-event-key"], "k1");

      const refused = await sendEvent(webhook(`http://localhost:${port}/hook`), event, {
        denyPrivateNetworks: true,
        timeoutMs: 5000,
      });
      assert.equal(refused.status, null);
      assert.match(refused.excerpt, /^refused: /);
      assert.equal(seen.length, 1, "a refused receiver is never connected to");
    } finally {
      server.close();
    }
  });

  it("gives up on a receiver that does not answer in time", async () => {
    const server = createServer(() => {});
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const { port } = server.address() as AddressInfo;
    try {
      const attempt = await sendEvent(webhook(`http://127.0.0.1:${port}/`), event, {
        denyPrivateNetworks: false,
        timeoutMs: 200,
      });
      assert.equal(attempt.status, null);
      assert.match(attempt.excerpt, /no answer in 200 ms/);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
