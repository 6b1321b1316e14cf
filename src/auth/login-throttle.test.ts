import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OciError } from "../oci/oci-error.ts";
import { LoginThrottle } from "./login-throttle.ts";

const throttled = (e: unknown) => e instanceof OciError && e.code === "TOOMANYREQUESTS";

describe("login throttle", () => {
  it("lets a client fail `burst` times, then once per refill, per client", () => {
    let now = 1_000_000;
    const throttle = new LoginThrottle({ burst: 3, refillPerSecond: 0.5, now: () => now });
    for (let i = 0; i < 3; i += 1) throttle.take("a");
    assert.throws(
      () => throttle.take("a"),
      (e: unknown) => {
        assert.ok(throttled(e));
        assert.equal((e as OciError).status, 429);
        assert.equal((e as OciError).headers["Retry-After"], "2");
        return true;
      },
    );
    throttle.take("b");
    now += 1000;
    assert.throws(() => throttle.take("a"), throttled);
    now += 1000;
    throttle.take("a");
    assert.throws(() => throttle.take("a"), throttled);
  });

  it("gives back attempts that succeeded", () => {
    const throttle = new LoginThrottle({ burst: 1, refillPerSecond: 1, now: () => 0 });
    throttle.take("a");
    throttle.refund("a");
    throttle.take("a");
    assert.throws(() => throttle.take("a"), throttled);
  });

  it("stays bounded in the clients it tracks", () => {
    let now = 0;
    const throttle = new LoginThrottle({
      burst: 2,
      refillPerSecond: 1,
      now: () => now,
      maxClients: 4,
    });
    for (let i = 0; i < 4; i += 1) throttle.take(`c${i}`);
    now += 5000;
    throttle.take("fresh");
    // c0..c3 refilled and were dropped; a dropped client starts again with a full bucket.
    throttle.take("c0");
    throttle.take("c0");
    assert.throws(() => throttle.take("c0"), throttled);
  });
});
