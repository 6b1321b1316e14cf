import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { configSchema } from "../config/config-schema.ts";
import { Credentials } from "./credentials.ts";
import { hashSecret } from "./password-hash.ts";

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
    const user = await credentials.verify("ci", userPassword);
    assert.equal(user?.admin, true, "the user is still there, with its admin role");
    assert.equal(user?.kind, "user");
    const token = await credentials.verify("ci", tokenSecret);
    assert.equal(token?.admin, false);
    assert.equal(token?.kind, "token");
    assert.deepEqual(token?.grants, [{ repositories: "app", actions: ["pull"] }]);
    assert.equal(await credentials.verify("ci", "neither-secret"), undefined);
  });

  it("finds a refresh token's principal in its own namespace", async () => {
    const credentials = new Credentials(auth);
    const user = await credentials.verify("ci", userPassword);
    const token = await credentials.verify("ci", tokenSecret);
    assert.ok(user && token);
    assert.equal(credentials.principal(user.id)?.admin, true);
    assert.equal(credentials.principal(token.id)?.kind, "token");
    assert.notEqual(user.id, token.id);
  });
});
