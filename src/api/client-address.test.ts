import assert from "node:assert/strict";
import { IncomingMessage } from "node:http";
import { Socket } from "node:net";
import { describe, it } from "node:test";
import { ClientAddresses } from "./client-address.ts";

function from(peer: string, forwardedFor?: string): IncomingMessage {
  const socket = new Socket();
  Object.defineProperty(socket, "remoteAddress", { value: peer });
  const req = new IncomingMessage(socket);
  if (forwardedFor !== undefined) req.headers["x-forwarded-for"] = forwardedFor;
  return req;
}

describe("client addresses", () => {
  const addresses = new ClientAddresses(["10.1.0.0/16", "192.0.2.7", "fd00::/8"]);

  it("believes X-Forwarded-For from a trusted proxy, from its right end", () => {
    assert.equal(addresses.of(from("10.1.2.3", "198.51.100.1")), "198.51.100.1");
    assert.equal(addresses.of(from("10.1.2.3", "6.6.6.6, 198.51.100.1")), "198.51.100.1");
    // A chain of trusted proxies is walked back to the first address that is not one.
    assert.equal(addresses.of(from("192.0.2.7", "198.51.100.1, 10.1.9.9")), "198.51.100.1");
    assert.equal(addresses.of(from("::ffff:10.1.2.3", "2001:db8::1")), "2001:db8::1");
    assert.equal(addresses.of(from("fd00::5", "198.51.100.4")), "198.51.100.4");
  });

  it("ignores the header from anyone else, and junk from a trusted proxy", () => {
    assert.equal(addresses.of(from("203.0.113.5", "198.51.100.1")), "203.0.113.5");
    assert.equal(addresses.of(from("10.2.0.1", "198.51.100.1")), "10.2.0.1");
    assert.equal(addresses.of(from("10.1.2.3", "not-an-address")), "10.1.2.3");
    assert.equal(addresses.of(from("10.1.2.3")), "10.1.2.3");
    assert.equal(addresses.of(from("10.1.2.3", "junk, 10.1.0.9")), "10.1.0.9");
  });

  it("trusts nobody by default", () => {
    assert.equal(new ClientAddresses([]).of(from("10.1.2.3", "198.51.100.1")), "10.1.2.3");
  });
});
