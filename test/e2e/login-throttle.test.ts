// End-to-end: failed Basic logins are throttled per client address. A client that keeps
// sending wrong passwords soon gets 429 TOOMANYREQUESTS (the spec's error body, with
// Retry-After) instead of a scrypt run per attempt, on the API and the token endpoint
// alike, while another client logs in as usual. Clients are told apart by their source
// address on loopback (127.0.0.1 and 127.0.0.3).
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { stringify } from "yaml";
import { hashSecret } from "../../src/auth/password-hash.ts";
import { type MeridianProcess, startMeridian } from "../support/meridian-process.ts";

const password = "alice-password-1";
const basic = (secret: string) => `Basic ${Buffer.from(`alice:${secret}`).toString("base64")}`;

describe("failed logins", () => {
  let dir: string;
  let server: MeridianProcess;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "meridian-login-throttle-"));
    const config = join(dir, "auth.yaml");
    await writeFile(
      config,
      stringify({
        auth: {
          signingKey: "test-signing-key-0123456789abcdef0123",
          users: [
            {
              name: "alice",
              passwordHash: await hashSecret(password),
              permissions: [{ repositories: "**", actions: ["pull"] }],
            },
          ],
        },
      }),
    );
    server = await startMeridian({ args: ["--config", config] });
  });
  after(async () => {
    await server?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  const get = (from: string, path: string, authorization: string) =>
    new Promise<{ status: number; retryAfter: string | undefined; body: string }>(
      (resolve, reject) => {
        const url = new URL(server.url);
        const req = request({
          host: url.hostname,
          port: Number(url.port),
          localAddress: from,
          path,
          agent: false,
          headers: { Authorization: authorization },
        });
        req.on("error", reject);
        req.on("response", (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => {
            body += chunk;
          });
          res.on("end", () =>
            resolve({
              status: res.statusCode ?? 0,
              retryAfter: res.headers["retry-after"],
              body,
            }),
          );
        });
        req.end();
      },
    );

  it("answers 429 TOOMANYREQUESTS with Retry-After to a client that keeps failing, not to others", async () => {
    const attempts = await Promise.all(
      Array.from({ length: 40 }, (_, i) => get("127.0.0.1", "/v2/", basic(`wrong-password-${i}`))),
    );
    const statuses = new Set(attempts.map((a) => a.status));
    assert.deepEqual([...statuses].sort(), [401, 429], "some refused outright, the rest throttled");
    const throttled = attempts.find((a) => a.status === 429);
    assert.ok(throttled);
    assert.match(throttled.retryAfter ?? "", /^[1-9]\d*$/);
    assert.equal(
      (JSON.parse(throttled.body) as { errors: { code: string }[] }).errors[0]?.code,
      "TOOMANYREQUESTS",
    );
    // The token endpoint throttles the same way.
    const tokenAttempts = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        get("127.0.0.1", "/token?service=meridian", basic(`wrong-token-password-${i}`)),
      ),
    );
    assert.ok(tokenAttempts.some((a) => a.status === 429));
    // Another client is not held back by this one's failures.
    assert.equal((await get("127.0.0.3", "/v2/", basic(password))).status, 200);
    assert.equal((await get("127.0.0.3", "/v2/", basic("a-wrong-one"))).status, 401);
  });
});
