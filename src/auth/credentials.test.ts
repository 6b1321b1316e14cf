import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { configSchema } from "../config/config-schema.ts";
import { OciError } from "../oci/oci-error.ts";
import { Credentials } from "./credentials.ts";
import { LoginThrottle } from "./login-throttle.ts";
import { hashSecret, verifySecret } from "./password-hash.ts";

const userPassword = "user-password-1";
const tokenSecret = "token-secret-1";

async function authConfig() {
  return configSchema.parse({
    auth: {
      signingKey: "unit-signing-key-0123456789abcdef0123",
      users: [{ name: "ci", passwordHash: await hashSecret(userPassword), admin: true }],
      tokens: [
        {
          name: "ci",
          secretHash: await hashSecret(tokenSecret),
          permissions: [{ repositories: "app", actions: ["pull"] }],
        },
      ],
    },
  }).auth;
}

describe("credentials", () => {
  let auth: Awaited<ReturnType<typeof authConfig>>;
  before(async () => {
    auth = await authConfig();
  });

  it("keeps a user and a token of the same name apart: each logs in with its own secret", async () => {
    const credentials = new Credentials(auth);
    const user = await credentials.verify("ci", userPassword, "192.0.2.1");
    assert.equal(user?.admin, true, "the user is still there, with its admin role");
    assert.equal(user?.kind, "user");
    const token = await credentials.verify("ci", tokenSecret, "192.0.2.1");
    assert.equal(token?.admin, false);
    assert.equal(token?.kind, "token");
    assert.deepEqual(token?.grants, [{ repositories: "app", actions: ["pull"] }]);
    assert.equal(await credentials.verify("ci", "neither-secret", "192.0.2.1"), undefined);
  });

  it("finds a refresh token's principal in its own namespace", async () => {
    const credentials = new Credentials(auth);
    const user = await credentials.verify("ci", userPassword, "192.0.2.1");
    const token = await credentials.verify("ci", tokenSecret, "192.0.2.1");
    assert.ok(user && token);
    assert.equal(credentials.principal(user.id)?.admin, true);
    assert.equal(credentials.principal(token.id)?.kind, "token");
    assert.notEqual(user.id, token.id);
    // A bare name from an older refresh token is ambiguous here: it names nobody.
    assert.equal(credentials.legacyPrincipal("ci"), undefined);
    assert.equal(credentials.legacyPrincipal("nobody"), undefined);
  });

  /** Credentials on a clock of their own, counting the scrypt checks that really run. */
  const counted = (burst = 10) => {
    const clock = { now: 1_000_000 };
    const calls = { count: 0 };
    const credentials = new Credentials(auth, {
      now: () => clock.now,
      throttle: new LoginThrottle({ burst, refillPerSecond: 1, now: () => clock.now }),
      throttledDelayMs: 0,
      verifySecret: (secret, encoded) => {
        calls.count += 1;
        return verifySecret(secret, encoded);
      },
    });
    return { credentials, clock, calls };
  };

  it("remembers a wrong password for a while instead of checking it again", async () => {
    const { credentials, clock, calls } = counted();
    assert.equal(await credentials.verify("ci", "wrong", "c"), undefined);
    const first = calls.count;
    assert.equal(await credentials.verify("ci", "wrong", "c"), undefined);
    assert.equal(calls.count, first, "no second scrypt run");
    clock.now += 31_000;
    assert.equal(await credentials.verify("ci", "wrong", "c"), undefined);
    assert.ok(calls.count > first, "checked again once forgotten");
  });

  it("remembers a success, and checks parallel attempts with the same credentials once", async () => {
    const { credentials, calls } = counted();
    const all = await Promise.all(
      Array.from({ length: 5 }, () => credentials.verify("ci", userPassword, "c")),
    );
    assert.ok(all.every((p) => p?.kind === "user"));
    assert.equal(calls.count, 1);
    await credentials.verify("ci", userPassword, "c");
    assert.equal(calls.count, 1);
  });

  it("throttles a client's failures with 429, lets remembered successes through, and not other clients", async () => {
    const { credentials, clock, calls } = counted(3);
    await credentials.verify("ci", userPassword, "c");
    for (let i = 0; i < 3; i += 1) await credentials.verify("ci", `wrong-${i}`, "c");
    const before = calls.count;
    await assert.rejects(
      credentials.verify("ci", "wrong-3", "c"),
      (e: unknown) =>
        e instanceof OciError && e.code === "TOOMANYREQUESTS" && e.headers["Retry-After"] === "1",
    );
    await assert.rejects(credentials.verify("ci", tokenSecret, "c"), OciError);
    assert.equal(calls.count, before, "a throttled attempt runs no scrypt");
    assert.equal((await credentials.verify("ci", userPassword, "c"))?.kind, "user");
    assert.equal((await credentials.verify("ci", tokenSecret, "other"))?.kind, "token");
    assert.equal(await credentials.verify("ci", "wrong-0", "c"), undefined, "remembered: no 429");
    clock.now += 1000;
    assert.equal((await credentials.verify("ci", tokenSecret, "c"))?.kind, "token");
  });
});
