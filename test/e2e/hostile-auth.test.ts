// Hostile names against a replica with authentication: the 401 challenge must not carry
// anything a client put in the request path. Today the authorizer runs before the name is
// validated and quotes the raw name into `WWW-Authenticate`, so a path can add parameters
// to the challenge, a second `realm` among them (Docker's challenge parser keeps the last
// value of a parameter, so a client would send its credentials to that realm).
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { hashSecret } from "../../src/auth/password-hash.ts";
import { type MeridianProcess, startMeridian } from "../support/meridian-process.ts";
import { errorCode, rawRequest, type Target, targetOf } from "../support/raw-http.ts";

/** The auth-params of a `Bearer` challenge, every value of each, in order. */
function challengeParams(header: string): Map<string, string[]> {
  const params = new Map<string, string[]>();
  const body = header.replace(/^Bearer\s+/i, "");
  for (const match of body.matchAll(/([A-Za-z_]+)="((?:[^"\\]|\\.)*)"/g)) {
    const [, key = "", value = ""] = match;
    params.set(key, [...(params.get(key) ?? []), value]);
  }
  return params;
}

describe("hostile names with authentication on", () => {
  let dir: string;
  let server: MeridianProcess;
  let target: Target;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "meridian-hostile-auth-"));
    const config = join(dir, "auth.yaml");
    await writeFile(
      config,
      [
        "auth:",
        `  signingKey: "${"k".repeat(40)}"`,
        "  users:",
        "    - name: alice",
        `      passwordHash: "${await hashSecret("a long enough password")}"`,
        "      admin: true",
        "",
      ].join("\n"),
    );
    server = await startMeridian({ args: ["--config", config] });
    target = targetOf(server.url);
  });

  after(async () => {
    await server?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  const hostileNames = [
    'a",realm="http://attacker.invalid/token',
    'a",service="other',
    'a",error="insufficient_scope',
    "a\\",
    "a,b",
    "A/../b",
  ];

  it("answers a valid name without credentials with a well-formed challenge", async () => {
    const response = await rawRequest(target, { method: "GET", path: "/v2/team/app/manifests/v1" });
    assert.equal(response.status, 401);
    assert.equal(errorCode(response), "UNAUTHORIZED");
    const params = challengeParams(String(response.headers["www-authenticate"]));
    assert.deepEqual(params.get("realm"), [`${server.url}/token`]);
    assert.deepEqual(params.get("scope"), ["repository:team/app:pull"]);
  });

  it("never lets a request path add parameters to the 401 challenge", async () => {
    const problems: string[] = [];
    for (const name of hostileNames) {
      const response = await rawRequest(target, {
        method: "GET",
        path: `/v2/${name}/manifests/v1`,
      });
      if (response.status === 401) {
        const params = challengeParams(String(response.headers["www-authenticate"]));
        const extra = [...params.keys()].filter(
          (key) => !["realm", "service", "scope"].includes(key),
        );
        if (
          (params.get("realm") ?? []).length !== 1 ||
          (params.get("service") ?? []).length !== 1 ||
          extra.length > 0
        ) {
          problems.push(`${name}: ${response.headers["www-authenticate"]}`);
        }
      } else if (errorCode(response) !== "NAME_INVALID") {
        problems.push(
          `${name}: ${response.status} ${response.body.toString("utf8").slice(0, 200)}`,
        );
      }
    }
    assert.deepEqual(problems, []);
  });
});
