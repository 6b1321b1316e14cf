// The portal's session cookie and its CSRF rule: what the cookie holds and how it is
// written, which sessions verify (forged, expired, foreign ones do not), and how the
// authorizer takes a session for its user: reads with the cookie alone, writes only with
// the CSRF header, roles looked up at every request.
import assert from "node:assert/strict";
import { IncomingMessage } from "node:http";
import { Socket } from "node:net";
import { before, describe, it } from "node:test";
import type { RouteMatch } from "../api/routes.ts";
import { configSchema } from "../config/config-schema.ts";
import { OciError } from "../oci/oci-error.ts";
import { Authorizer } from "./authorizer.ts";
import { Credentials } from "./credentials.ts";
import { hashSecret } from "./password-hash.ts";
import {
  csrfMatches,
  PortalSessions,
  readSessionCookie,
  sessionCookie,
  sessionCookieName,
} from "./portal-session.ts";
import { SigningKeyring } from "./signing-keyring.ts";
import { TokenService } from "./token-service.ts";

const signingKey = "unit-signing-key-0123456789abcdef0123";
const client = "192.0.2.1";
const manifestRoute: RouteMatch = { route: "manifest", name: "team/app", tail: "v1" };

function request(method: string, headers: Record<string, string>): IncomingMessage {
  const req = new IncomingMessage(new Socket());
  req.method = method;
  req.headers = { host: "registry.test:5000", ...headers };
  return req;
}

async function refusal(promise: Promise<unknown>): Promise<OciError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof OciError, String(error));
    return error;
  }
  assert.fail("expected a refusal");
}

describe("portal sessions", () => {
  let clock = 1_800_000_000;
  const sessions = new PortalSessions({
    signingKey,
    service: "meridian",
    ttlSeconds: 3600,
    now: () => clock,
  });

  it("verifies its own sessions until they expire", async () => {
    const { token, session } = await sessions.issue("root", "stamp-1");
    assert.equal(session.expiresAt, clock + 3600);
    assert.deepEqual(await sessions.verify(token), session);
    assert.ok(session.csrf.length >= 24, "a CSRF value nobody can guess");
    clock += 3601;
    assert.equal(await sessions.verify(token), undefined, "expired");
    clock -= 3601;
  });

  it("refuses a forged session, another key's, and a bearer token", async () => {
    const { token } = await sessions.issue("root", "stamp-1");
    const [head, body] = token.split(".");
    assert.equal(await sessions.verify(`${head}.${body}.AAAA`), undefined);
    const other = new PortalSessions({ signingKey: `${signingKey}x`, service: "meridian" });
    assert.equal(await sessions.verify((await other.issue("root", "stamp-1")).token), undefined);
    const tokens = new TokenService({
      signingKey,
      service: "meridian",
      tokenTtlSeconds: 300,
      refreshTtlSeconds: 3600,
    });
    const bearer = await tokens.issue(
      { kind: "user", name: "root", id: "root", admin: true, grants: [] },
      [],
    );
    assert.equal(await sessions.verify(bearer), undefined, "a bearer token is no session");
    assert.equal(await sessions.verify("not-a-jwt"), undefined);
  });

  it("follows the keyring: a rotated key keeps older sessions until it is dropped", async () => {
    const keyring = new SigningKeyring(undefined);
    const first = { kid: "k1", key: "a".repeat(64), createdAt: "2026-01-01T00:00:00.000Z" };
    const second = { kid: "k2", key: "b".repeat(64), createdAt: "2026-02-01T00:00:00.000Z" };
    keyring.useRecords([first]);
    const rotating = new PortalSessions({ keyring, service: "meridian" });
    const { token } = await rotating.issue("root", "stamp-1");
    keyring.useRecords([first, second]);
    assert.equal((await rotating.verify(token))?.subject, "root", "an older key still checks");
    keyring.useRecords([second]);
    assert.equal(await rotating.verify(token), undefined, "its key is gone");
  });

  it("writes an HttpOnly, SameSite=Strict cookie, Secure over HTTPS, and reads it back", () => {
    const plain = sessionCookie("abc", { secure: false, maxAgeSeconds: 60 });
    assert.equal(plain, `${sessionCookieName}=abc; Path=/; HttpOnly; SameSite=Strict; Max-Age=60`);
    assert.match(sessionCookie("abc", { secure: true, maxAgeSeconds: 60 }), /; Secure$/);
    assert.match(sessionCookie("", { secure: false, maxAgeSeconds: 60 }), /Max-Age=0/);
    assert.equal(readSessionCookie(`a=1; ${sessionCookieName}=xyz; b=2`), "xyz");
    assert.equal(readSessionCookie("a=1"), undefined);
    assert.equal(readSessionCookie(`${sessionCookieName}=`), undefined);
    assert.equal(readSessionCookie(undefined), undefined);
  });

  it("matches the CSRF header exactly", async () => {
    const { session } = await sessions.issue("root", "stamp-1");
    assert.ok(csrfMatches(session, session.csrf));
    assert.ok(!csrfMatches(session, `${session.csrf}x`));
    assert.ok(!csrfMatches(session, ""));
    assert.ok(!csrfMatches(session, undefined));
    assert.ok(!csrfMatches(session, [session.csrf, session.csrf]));
  });
});

describe("the authorizer with portal sessions", () => {
  const sessions = new PortalSessions({ signingKey, service: "meridian" });
  let authorizer: Authorizer;
  let credentials: Credentials;
  let rootCookie: string;
  let rootCsrf: string;
  let aliceCookie: string;

  before(async () => {
    const auth = configSchema.parse({
      auth: {
        signingKey,
        users: [
          { name: "root", passwordHash: await hashSecret("root-password-1"), admin: true },
          {
            name: "alice",
            passwordHash: await hashSecret("alice-password-1"),
            permissions: [{ repositories: "team/**", actions: ["pull"] }],
          },
        ],
      },
    }).auth;
    credentials = new Credentials(auth);
    const tokens = new TokenService({
      signingKey,
      service: "meridian",
      tokenTtlSeconds: 300,
      refreshTtlSeconds: 3600,
    });
    authorizer = new Authorizer({
      credentials,
      tokens,
      anonymousPull: false,
      tls: false,
      sessions,
    });
    const root = await sessions.issue("root", credentials.secretStamp("root") ?? "");
    rootCookie = `${sessionCookieName}=${root.token}`;
    rootCsrf = root.session.csrf;
    const alice = await sessions.issue("alice", credentials.secretStamp("alice") ?? "");
    aliceCookie = `${sessionCookieName}=${alice.token}`;
  });

  it("lets an admin's session read the admin API and the registry with the cookie alone", async () => {
    await authorizer.requireAdmin(request("GET", { cookie: rootCookie }), client);
    const access = await authorizer.authorize(
      request("GET", { cookie: rootCookie }),
      manifestRoute,
      client,
    );
    assert.ok(access("other/repo", "delete"), "an admin may do everything");
  });

  it("refuses a write made with the cookie but without the CSRF header", async () => {
    const error = await refusal(
      authorizer.requireAdmin(request("POST", { cookie: rootCookie }), client),
    );
    assert.equal(error.code, "DENIED");
    const wrong = await refusal(
      authorizer.authorize(
        request("DELETE", { cookie: rootCookie, "x-meridian-csrf": "guess" }),
        manifestRoute,
        client,
      ),
    );
    assert.equal(wrong.code, "DENIED");
    await authorizer.requireAdmin(
      request("POST", { cookie: rootCookie, "x-meridian-csrf": rootCsrf }),
      client,
    );
  });

  it("gives a session no more than its user's grants", async () => {
    const denied = await refusal(
      authorizer.requireAdmin(request("GET", { cookie: aliceCookie }), client),
    );
    assert.equal(denied.code, "DENIED");
    const access = await authorizer.authorize(
      request("GET", { cookie: aliceCookie }),
      manifestRoute,
      client,
    );
    assert.ok(access("team/app", "pull"));
    assert.ok(!access("team/app", "push"));
  });

  it("treats a forged session, or one whose user is gone, as no credentials", async () => {
    const forged = await refusal(
      authorizer.requireAdmin(request("GET", { cookie: `${rootCookie}x` }), client),
    );
    assert.equal(forged.code, "UNAUTHORIZED");
    const ghost = `${sessionCookieName}=${(await sessions.issue("nobody", "")).token}`;
    const gone = await refusal(authorizer.requireAdmin(request("GET", { cookie: ghost }), client));
    assert.equal(gone.code, "UNAUTHORIZED");
  });

  it("lets an Authorization header win over the cookie", async () => {
    const basic = `Basic ${Buffer.from("alice:alice-password-1").toString("base64")}`;
    const error = await refusal(
      authorizer.requireAdmin(request("GET", { cookie: rootCookie, authorization: basic }), client),
    );
    assert.equal(error.code, "DENIED", "alice's Basic credentials, not root's session");
  });

  it("ends a session when its user's password is set again", async () => {
    await authorizer.requireAdmin(request("GET", { cookie: rootCookie }), client);
    credentials.useAccounts(
      [
        {
          name: "root",
          passwordHash: await hashSecret("root-password-2"),
          admin: true,
          permissions: [],
        },
      ],
      [],
    );
    const ended = await refusal(
      authorizer.requireAdmin(request("GET", { cookie: rootCookie }), client),
    );
    assert.equal(ended.code, "UNAUTHORIZED");
  });
});
