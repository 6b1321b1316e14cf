import assert from "node:assert/strict";
import { IncomingMessage } from "node:http";
import { Socket } from "node:net";
import { before, describe, it } from "node:test";
import { SignJWT } from "jose";
import type { RouteMatch } from "../api/routes.ts";
import { configSchema } from "../config/config-schema.ts";
import { OciError } from "../oci/oci-error.ts";
import { Authorizer } from "./authorizer.ts";
import { Credentials } from "./credentials.ts";
import { hashSecret } from "./password-hash.ts";
import { TokenService } from "./token-service.ts";

const signingKey = "unit-signing-key-0123456789abcdef0123";
const password = "alice-password-1";
const client = "192.0.2.1";

function request(method: string, authorization?: string): IncomingMessage {
  const req = new IncomingMessage(new Socket());
  req.method = method;
  req.headers = { host: "registry.test:5000" };
  if (authorization) req.headers.authorization = authorization;
  return req;
}

const basic = (name: string, secret: string) =>
  `Basic ${Buffer.from(`${name}:${secret}`).toString("base64")}`;
const manifestRoute: RouteMatch = { route: "manifest", name: "team/app", tail: "v1" };
const uploadRoute: RouteMatch = { route: "uploadStart", name: "team/app", tail: "" };
const baseRoute: RouteMatch = { route: "base", name: "", tail: "" };
const catalogRoute: RouteMatch = { route: "catalog", name: "", tail: "" };

/** The OciError an authorization throws (fails when it does not throw one). */
async function refusal(promise: Promise<unknown>): Promise<OciError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof OciError, String(error));
    return error;
  }
  assert.fail("expected a refusal");
}

const realm = 'Bearer realm="http://registry.test:5000/token",service="meridian"';

describe("authorizer", () => {
  let tokens: TokenService;
  let authorizer: Authorizer;
  let anonymousAuthorizer: Authorizer;
  before(async () => {
    const auth = configSchema.parse({
      auth: {
        signingKey,
        users: [
          {
            name: "alice",
            passwordHash: await hashSecret(password),
            permissions: [{ repositories: "team/**", actions: ["pull"] }],
          },
        ],
      },
    }).auth;
    const credentials = new Credentials(auth);
    tokens = new TokenService({
      signingKey,
      service: "meridian",
      tokenTtlSeconds: 300,
      refreshTtlSeconds: 3600,
    });
    authorizer = new Authorizer({ credentials, tokens, anonymousPull: false, tls: false });
    anonymousAuthorizer = new Authorizer({ credentials, tokens, anonymousPull: true, tls: false });
  });

  const expectChallenge = async (
    authorization: string | undefined,
    route: RouteMatch,
    method: string,
    expected: string,
  ) => {
    const error = await refusal(
      authorizer.authorize(request(method, authorization), route, client),
    );
    assert.equal(error.code, "UNAUTHORIZED");
    assert.equal(error.headers["WWW-Authenticate"], expected);
  };

  it("challenges a request without credentials with the scope it needs", async () => {
    await expectChallenge(
      undefined,
      manifestRoute,
      "GET",
      `${realm},scope="repository:team/app:pull"`,
    );
    await expectChallenge(
      undefined,
      uploadRoute,
      "POST",
      `${realm},scope="repository:team/app:pull,push"`,
    );
    await expectChallenge(undefined, catalogRoute, "GET", `${realm},scope="registry:catalog:*"`);
    await expectChallenge(undefined, baseRoute, "GET", realm);
  });

  it("gives a wrong password the same full challenge as no credentials", async () => {
    await expectChallenge(
      basic("alice", "wrong-password"),
      manifestRoute,
      "GET",
      `${realm},scope="repository:team/app:pull"`,
    );
    await expectChallenge(
      basic("nobody", "wrong-password"),
      uploadRoute,
      "POST",
      `${realm},scope="repository:team/app:pull,push"`,
    );
    await expectChallenge(basic("alice", "wrong-password"), baseRoute, "GET", realm);
  });

  it("gives a forged, expired or malformed bearer token the full challenge with invalid_token", async () => {
    const claims = { access: [{ type: "repository", name: "team/app", actions: ["pull"] }] };
    const sign = (key: string, expires: number) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: "HS256", typ: "JWT" })
        .setIssuer("meridian")
        .setAudience("meridian")
        .setSubject("alice")
        .setIssuedAt(expires - 300)
        .setExpirationTime(expires)
        .sign(new TextEncoder().encode(key));
    const now = Math.floor(Date.now() / 1000);
    const forged = await sign("another-signing-key-0123456789abcdef", now + 300);
    const expired = await sign(signingKey, now - 60);
    for (const token of [forged, expired, "not-a-token"]) {
      await expectChallenge(
        `Bearer ${token}`,
        manifestRoute,
        "GET",
        `${realm},scope="repository:team/app:pull",error="invalid_token"`,
      );
      await expectChallenge(`Bearer ${token}`, baseRoute, "GET", `${realm},error="invalid_token"`);
    }
    // The same claims signed with the right key, still valid, are served.
    const good = await sign(signingKey, now + 300);
    const can = await authorizer.authorize(request("GET", `Bearer ${good}`), manifestRoute, client);
    assert.equal(can("team/app", "pull"), true);
    assert.equal(can("team/app", "push"), false);
  });

  it("marks a valid token lacking the action insufficient_scope", async () => {
    const pullOnly = await tokens.issue(
      { kind: "user", name: "alice", id: "alice", admin: false, grants: [] },
      ["repository:team/app:pull"],
    );
    await expectChallenge(
      `Bearer ${pullOnly}`,
      uploadRoute,
      "POST",
      `${realm},scope="repository:team/app:pull,push",error="insufficient_scope"`,
    );
  });

  it("denies a valid Basic user lacking the action with 403, and serves what it may", async () => {
    const denied = await refusal(
      authorizer.authorize(request("POST", basic("alice", password)), uploadRoute, client),
    );
    assert.equal(denied.code, "DENIED");
    const can = await authorizer.authorize(
      request("GET", basic("alice", password)),
      manifestRoute,
      client,
    );
    assert.equal(can("team/other", "pull"), true, "team/** reaches other repositories");
    assert.equal(can("elsewhere/app", "pull"), false);
  });

  it("lets anonymous callers pull, and only pull, when anonymous pulls are on", async () => {
    const can = await anonymousAuthorizer.authorize(request("GET"), manifestRoute, client);
    assert.equal(can("team/app", "pull"), true);
    assert.equal(can("team/app", "push"), false);
    const push = await refusal(anonymousAuthorizer.authorize(request("POST"), uploadRoute, client));
    assert.equal(push.code, "UNAUTHORIZED");
    const admin = await refusal(anonymousAuthorizer.requireAdmin(request("PUT"), client));
    assert.equal(admin.code, "UNAUTHORIZED");
    const asUser = await refusal(
      anonymousAuthorizer.requireAdmin(request("PUT", basic("alice", password)), client),
    );
    assert.equal(asUser.code, "DENIED");
  });
});
