import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeJwt, decodeProtectedHeader, SignJWT } from "jose";
import type { Principal } from "./permissions.ts";
import { newSigningKey, SigningKeyring } from "./signing-keyring.ts";
import { parseScope, TokenService } from "./token-service.ts";

const signingKey = "unit-signing-key-0123456789abcdef0123";
const service = (key = signingKey, tokenTtlSeconds = 300) =>
  new TokenService({
    signingKey: key,
    service: "meridian",
    tokenTtlSeconds,
    refreshTtlSeconds: 600,
  });

const alice: Principal = {
  kind: "user",
  name: "alice",
  id: "alice",
  admin: false,
  grants: [
    { repositories: "team/**", actions: ["pull"] },
    { repositories: "team/app", actions: ["push"] },
  ],
};
const admin: Principal = { kind: "user", name: "root", id: "root", admin: true, grants: [] };

describe("token service", () => {
  it("signs with the newest key and honours tokens of older keys it still holds", async () => {
    const keyring = new SigningKeyring(undefined);
    const tokens = new TokenService({
      keyring,
      service: "meridian",
      tokenTtlSeconds: 300,
      refreshTtlSeconds: 600,
    });
    const first = newSigningKey(new Date(1_000));
    keyring.useRecords([first]);
    const before = await tokens.issue(alice, ["repository:team/app:pull"]);
    assert.equal(decodeProtectedHeader(before).kid, first.kid);
    const second = newSigningKey(new Date(2_000));
    keyring.useRecords([first, second]);
    const after = await tokens.issue(alice, ["repository:team/app:pull"]);
    assert.equal(decodeProtectedHeader(after).kid, second.kid);
    assert.equal((await tokens.verify(before))?.subject, "alice", "an older key's token holds");
    assert.equal((await tokens.verify(after))?.subject, "alice");
    keyring.useRecords([second]);
    assert.equal(await tokens.verify(before), undefined, "a key that went takes its tokens");
    // A token of another registry's key with a kid this one does not know.
    const foreign = new TokenService({
      keyring: new SigningKeyring(undefined),
      service: "meridian",
      tokenTtlSeconds: 300,
      refreshTtlSeconds: 600,
    });
    foreign.keyring.useRecords([newSigningKey(new Date(3_000))]);
    assert.equal(await tokens.verify(await foreign.issue(alice, [])), undefined);
  });

  it("grants each requested scope as far as the principal may", async () => {
    const tokens = service();
    const token = await tokens.issue(alice, [
      "repository:team/app:pull,push,delete",
      "repository:team/web:pull,push",
      "repository:elsewhere/app:pull",
      "registry:catalog:*",
      "not-a-scope",
    ]);
    const verified = await tokens.verify(token);
    assert.equal(verified?.subject, "alice");
    assert.deepEqual(verified?.access, [
      { type: "repository", name: "team/app", actions: ["pull", "push"] },
      { type: "repository", name: "team/web", actions: ["pull"] },
      { type: "repository", name: "elsewhere/app", actions: [] },
    ]);
  });

  it("reads `*` as every action, and grants the catalog to admins only", async () => {
    const tokens = service();
    const verified = await tokens.verify(
      await tokens.issue(admin, ["repository:any/repo:*", "registry:catalog:*"]),
    );
    assert.deepEqual(verified?.access, [
      { type: "repository", name: "any/repo", actions: ["pull", "push", "delete"] },
      { type: "registry", name: "catalog", actions: ["*"] },
    ]);
    const unknownActions = await tokens.verify(
      await tokens.issue(admin, ["repository:any/repo:pull,fly"]),
    );
    assert.deepEqual(unknownActions?.access[0]?.actions, ["pull"]);
  });

  it("names a token principal by its id, apart from a user of the same name", async () => {
    const tokens = service();
    const ci: Principal = { ...alice, kind: "token", name: "alice", id: "token:alice" };
    assert.equal((await tokens.verify(await tokens.issue(ci, [])))?.subject, "token:alice");
    assert.equal(decodeJwt(await tokens.issueRefresh(ci)).sub, "token:alice");
  });

  it("refuses tokens signed with another key, expired, or of the other kind", async () => {
    const tokens = service();
    const other = service("another-signing-key-0123456789abcdef");
    assert.equal(
      await tokens.verify(await other.issue(alice, ["repository:team/app:pull"])),
      undefined,
    );
    assert.equal(await tokens.verifyRefresh(await other.issueRefresh(alice)), undefined);
    const now = Math.floor(Date.now() / 1000);
    const expired = await new SignJWT({ access: [] })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setIssuer("meridian")
      .setAudience("meridian")
      .setSubject("alice")
      .setIssuedAt(now - 600)
      .setExpirationTime(now - 300)
      .sign(new TextEncoder().encode(signingKey));
    assert.equal(await tokens.verify(expired), undefined);
    // A refresh token is no access token, and the other way round.
    const refresh = await tokens.issueRefresh(alice);
    assert.equal(await tokens.verify(refresh), undefined);
    assert.deepEqual(await tokens.verifyRefresh(refresh), { subject: "alice", legacy: false });
    assert.equal(await tokens.verifyRefresh(await tokens.issue(alice, [])), undefined);
    for (const junk of ["", "not-a-token", "a.b.c"])
      assert.equal(await tokens.verify(junk), undefined, junk);
  });

  it("flags a refresh token from before the separate namespaces as legacy", async () => {
    const tokens = service();
    const old = await new SignJWT({ refresh: true })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setIssuer("meridian")
      .setAudience("meridian/refresh")
      .setSubject("ci")
      .setExpirationTime("5m")
      .sign(new TextEncoder().encode(signingKey));
    assert.deepEqual(await tokens.verifyRefresh(old), { subject: "ci", legacy: true });
  });

  it("refuses an unsigned token and one whose access claim is not a list", async () => {
    const tokens = service();
    const body = (claims: object) => Buffer.from(JSON.stringify(claims)).toString("base64url");
    const unsigned = `${body({ alg: "none", typ: "JWT" })}.${body({
      iss: "meridian",
      aud: "meridian",
      sub: "alice",
      exp: Math.floor(Date.now() / 1000) + 300,
      access: [{ type: "repository", name: "team/app", actions: ["push"] }],
    })}.`;
    assert.equal(await tokens.verify(unsigned), undefined);
    const noList = await new SignJWT({ access: "everything" })
      .setProtectedHeader({ alg: "HS256" })
      .setIssuer("meridian")
      .setAudience("meridian")
      .setSubject("alice")
      .setExpirationTime("5m")
      .sign(new TextEncoder().encode(signingKey));
    assert.equal(await tokens.verify(noList), undefined);
  });
});

describe("scope parsing", () => {
  it("splits type, name and actions, keeping colons of a name", () => {
    assert.deepEqual(parseScope("repository:team/app:pull,push"), {
      type: "repository",
      name: "team/app",
      actions: ["pull", "push"],
    });
    assert.deepEqual(parseScope("repository:host:5000/app:pull"), {
      type: "repository",
      name: "host:5000/app",
      actions: ["pull"],
    });
    assert.deepEqual(parseScope("registry:catalog:*"), {
      type: "registry",
      name: "catalog",
      actions: ["*"],
    });
    assert.deepEqual(parseScope("repository:app:"), {
      type: "repository",
      name: "app",
      actions: [],
    });
    assert.deepEqual(parseScope("repository:app:pull,,push")?.actions, ["pull", "push"]);
  });

  it("refuses scopes without all three parts or of an unknown type", () => {
    for (const scope of ["", "repository", "repository:app", ":app:pull", "user:app:pull"])
      assert.equal(parseScope(scope), undefined, scope);
  });
});
