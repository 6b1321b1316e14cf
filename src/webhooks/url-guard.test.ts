// Receiver URL checks: schemes, always-refused link-local and metadata addresses (IPv4,
// IPv6 and IPv4-mapped), and private ranges only when asked. No traffic is sent.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { approveUrl, refusal, UrlRefusedError } from "./url-guard.ts";
import { inScope } from "./webhook-record.ts";

describe("receiver URL guard", () => {
  it("always refuses link-local and cloud metadata addresses", () => {
    for (const address of [
      "169.254.169.254",
      "169.254.0.1",
      "fe80::1",
      "febf::1",
      "fd00:ec2::254",
      "::ffff:169.254.169.254",
    ]) {
      assert.match(refusal(address, false) ?? "", /link-local or cloud metadata/, address);
    }
  });

  it("refuses loopback and private ranges only with denyPrivateNetworks", () => {
    for (const address of [
      "127.0.0.1",
      "10.0.0.1",
      "172.16.5.4",
      "192.168.1.1",
      "::1",
      "fd12::1",
      "0.0.0.0",
      "::ffff:127.0.0.1",
    ]) {
      assert.equal(refusal(address, false), undefined, address);
      assert.match(refusal(address, true) ?? "", /private/, address);
    }
    assert.equal(refusal("93.184.216.34", true), undefined);
  });

  it("takes http and https only, without credentials", async () => {
    await assert.rejects(approveUrl("file:///etc/passwd", false), UrlRefusedError);
    await assert.rejects(approveUrl("http://user:pw@127.0.0.1/", false), /credentials/);
    await assert.rejects(approveUrl("not a url", false), /not a URL/);
    const ok = await approveUrl("http://127.0.0.1:8080/hook", false);
    assert.deepEqual(ok.addresses, [{ address: "127.0.0.1", family: 4 }]);
  });
});

describe("webhook scope", () => {
  it("reads scopes as ACR does", () => {
    assert.ok(inScope(undefined, "any/repo", "t"));
    assert.ok(inScope("app:*", "app", "v1"));
    assert.ok(inScope("app:*", "app", undefined));
    assert.ok(!inScope("app:*", "app2", "v1"));
    assert.ok(inScope("app", "app", "latest"));
    assert.ok(!inScope("app", "app", "v1"));
    assert.ok(inScope("team/*:v*", "team/a/b", "v2"));
    assert.ok(!inScope("team/*:v*", "team/a", "prod"));
    assert.ok(!inScope("app:v1", "app", undefined));
  });
});
