// The portal's server side over real HTTP on loopback: the built page and its size budget,
// the login (JSON only, users only, a wrong password refused) and the session cookie it
// sets, the session answer with authentication on and off, the health page's counters,
// and a logout that needs the CSRF header.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import pino from "pino";
import { Counter, Registry as MetricsRegistry } from "prom-client";
import type { ApiExtension } from "../api/api-server.ts";
import { sendError } from "../api/responses.ts";
import { Authorizer } from "../auth/authorizer.ts";
import { Credentials } from "../auth/credentials.ts";
import { hashSecret } from "../auth/password-hash.ts";
import { PortalSessions } from "../auth/portal-session.ts";
import { TokenService } from "../auth/token-service.ts";
import { configSchema } from "../config/config-schema.ts";
import type { ReplicaSet } from "../control/replica-set.ts";
import { createPortalApi } from "./portal-api.ts";
import { buildPortal, type PortalBundle } from "./portal-build.ts";

const signingKey = "unit-signing-key-0123456789abcdef0123";
const log = pino({ level: "silent" });

async function serve(extension: ApiExtension): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    extension
      .handle(req, res, {
        requestId: "test",
        log,
        query: url.searchParams,
        path: url.pathname,
        signal: new AbortController().signal,
        client: "127.0.0.1",
      })
      .catch((error: unknown) => sendError(res, error, "test", log));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

function portalOf(
  users: { name: string; passwordHash: string; admin?: boolean }[],
  bundle: PortalBundle,
) {
  const auth = configSchema.parse({ auth: { signingKey, users } }).auth;
  const credentials = new Credentials(auth, { throttledDelayMs: 0 });
  const sessions = new PortalSessions({ signingKey, service: "meridian" });
  const tokens = new TokenService({
    signingKey,
    service: "meridian",
    tokenTtlSeconds: 300,
    refreshTtlSeconds: 3600,
  });
  const authorizer = new Authorizer({
    credentials,
    tokens,
    anonymousPull: false,
    tls: false,
    sessions,
  });
  const replicaSet = { list: async () => [] } as unknown as ReplicaSet;
  const metrics = new MetricsRegistry();
  const repairs = new Counter({
    name: "meridian_replication_anti_entropy_repairs_total",
    help: "repairs",
    labelNames: ["peer"],
    registers: [metrics],
  });
  repairs.inc({ peer: "eastus" }, 2);
  repairs.inc({ peer: "westeurope" }, 3);
  return createPortalApi({
    metrics,
    authorizer,
    credentials,
    sessions,
    replicaSet,
    replicates: false,
    region: "westus",
    tls: false,
    bundle: async () => bundle,
  });
}

describe("the portal's server side", () => {
  let bundle: PortalBundle;
  let withUsers: { server: Server; url: string };
  let withoutUsers: { server: Server; url: string };

  before(async () => {
    bundle = await buildPortal();
    const users = [
      { name: "root", passwordHash: await hashSecret("root-password-1"), admin: true },
    ];
    withUsers = await serve(portalOf(users, bundle));
    withoutUsers = await serve(portalOf([], bundle));
  });
  after(() => {
    withUsers?.server.close();
    withoutUsers?.server.close();
  });

  it("builds a page whose script and style stay under 300 KB gzipped, all served from itself", async () => {
    const js = bundle.get("assets/app.js");
    const css = bundle.get("assets/app.css");
    assert.ok(js && css, "a script and a style sheet");
    assert.ok(js.gzip.length + css.gzip.length < 300 * 1024, `${js.gzip.length} bytes of script`);
    const page = await fetch(`${withUsers.url}/portal/`, {
      headers: { "Accept-Encoding": "gzip" },
    });
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-security-policy") ?? "", /default-src 'self'/);
    assert.match(await page.text(), /\/portal\/assets\/app\.js/);
    const script = await fetch(`${withUsers.url}/portal/assets/app.js`);
    assert.equal(script.headers.get("content-type"), "text/javascript; charset=utf-8");
    const again = await fetch(`${withUsers.url}/portal/assets/app.js`, {
      headers: { "If-None-Match": script.headers.get("etag") ?? "" },
    });
    assert.equal(again.status, 304);
    assert.equal((await fetch(`${withUsers.url}/portal/assets/nothing.js`)).status, 404);
    const bare = await fetch(`${withUsers.url}/portal`, { redirect: "manual" });
    assert.equal(bare.headers.get("location"), "/portal/");
  });

  it("says when authentication is off", async () => {
    const answer = await fetch(`${withoutUsers.url}/portal/api/session`);
    assert.deepEqual(await answer.json(), { authentication: false, region: "westus" });
  });

  it("sums this replica's replication counters for the health page, for admins only", async () => {
    const answer = await fetch(`${withoutUsers.url}/portal/api/counters`);
    assert.deepEqual(await answer.json(), {
      region: "westus",
      counters: { meridian_replication_anti_entropy_repairs_total: 5 },
    });
    assert.equal((await fetch(`${withUsers.url}/portal/api/counters`)).status, 401);
  });

  it("logs a user in with a strict cookie that the session answer then knows", async () => {
    const login = (body: unknown, type = "application/json") =>
      fetch(`${withUsers.url}/portal/api/login`, {
        method: "POST",
        headers: { "Content-Type": type },
        body: JSON.stringify(body),
      });
    assert.equal((await login({ username: "root", password: "nope" })).status, 401);
    assert.equal(
      (await login({ username: "root", password: "root-password-1" }, "text/plain")).status,
      415,
      "a form another site could post is refused",
    );
    const ok = await login({ username: "root", password: "root-password-1" });
    assert.equal(ok.status, 200);
    const cookie = ok.headers.get("set-cookie") ?? "";
    assert.match(
      cookie,
      /^meridian-session=[^;]+; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/,
    );
    const { csrf } = (await ok.json()) as { csrf: string };
    const pair = cookie.split(";")[0] ?? "";
    const session = await fetch(`${withUsers.url}/portal/api/session`, {
      headers: { cookie: pair },
    });
    assert.deepEqual(await session.json(), {
      authentication: true,
      user: { name: "root", admin: true },
      csrf,
      region: "westus",
    });
    const anonymous = await fetch(`${withUsers.url}/portal/api/session`);
    assert.deepEqual(await anonymous.json(), { authentication: true, region: "westus" });

    const forgedLogout = await fetch(`${withUsers.url}/portal/api/logout`, {
      method: "POST",
      headers: { cookie: pair },
    });
    assert.equal(forgedLogout.status, 403, "a logout without the CSRF header is refused");
    const logout = await fetch(`${withUsers.url}/portal/api/logout`, {
      method: "POST",
      headers: { cookie: pair, "X-Meridian-CSRF": csrf },
    });
    assert.equal(logout.status, 200);
    assert.match(logout.headers.get("set-cookie") ?? "", /^meridian-session=; .*Max-Age=0/);
  });
});
