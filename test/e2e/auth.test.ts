// End-to-end: authentication and authorization on every endpoint: Docker token auth
// (401 + Bearer challenge, token endpoint, refresh tokens), Basic auth, repository-scoped
// tokens, the admin role, the loopback default, and secrets kept out of logs. Real
// processes, real skopeo.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { parse, stringify } from "yaml";
import { hashSecret } from "../../src/auth/password-hash.ts";
import { type MeridianProcess, startMeridian } from "../support/meridian-process.ts";
import { imageManifest, ociManifestType, randomBlob } from "../support/oci-fixtures.ts";
import { OciLayoutBuilder, readLayoutRef } from "../support/oci-layout.ts";
import { createSkopeo, type Skopeo } from "../support/skopeo.ts";
import { httpsGetTrusting, selfSignedCertificate } from "../support/tls.ts";

const passwords = {
  admin: "admin-password-1",
  alice: "alice-password-1",
  bob: "bob-password-1",
  ci: "ci-token-secret-1",
};
const replicationSecret = "replication-secret-0123456789";
const basic = (name: keyof typeof passwords, password = passwords[name]) =>
  `Basic ${Buffer.from(`${name}:${password}`).toString("base64")}`;

async function token(base: string, who: keyof typeof passwords, scope: string): Promise<string> {
  const response = await fetch(
    `${base}/token?service=meridian&scope=${encodeURIComponent(scope)}`,
    {
      headers: { Authorization: basic(who) },
    },
  );
  assert.equal(response.status, 200, await response.clone().text());
  return ((await response.json()) as { token: string }).token;
}

describe("authentication and authorization", () => {
  let dir: string;
  let configFile: string;
  let server: MeridianProcess;
  let other: MeridianProcess;
  let base: string;
  let skopeo: Skopeo;
  const image = { config: randomBlob(100), layer: randomBlob(2048) };
  const manifest = imageManifest(image.config, [image.layer]);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "meridian-auth-"));
    configFile = join(dir, "meridian.yaml");
    await writeFile(
      configFile,
      stringify({
        // A peer that is never there: enough to mount the peer API behind its credential.
        region: "westus",
        peers: [{ region: "eastus", url: "http://127.0.0.1:1" }],
        replication: { secret: replicationSecret },
        auth: {
          signingKey: "test-signing-key-0123456789abcdef0123",
          users: [
            { name: "admin", passwordHash: await hashSecret(passwords.admin), admin: true },
            {
              name: "alice",
              passwordHash: await hashSecret(passwords.alice),
              permissions: [{ repositories: "team/**", actions: ["pull", "push", "delete"] }],
            },
            {
              name: "bob",
              passwordHash: await hashSecret(passwords.bob),
              permissions: [{ repositories: "team/**", actions: ["pull"] }],
            },
          ],
          tokens: [
            {
              name: "ci",
              secretHash: await hashSecret(passwords.ci),
              permissions: [{ repositories: "team/app", actions: ["pull"] }],
            },
          ],
        },
      }),
    );
    // Debug logging: every request is logged, so that a leaked secret would show.
    server = await startMeridian({
      args: ["--config", configFile],
      env: { MERIDIAN_LOG_LEVEL: "debug" },
    });
    other = await startMeridian({ args: ["--config", configFile] });
    base = server.url;
    skopeo = await createSkopeo(join(dir, "skopeo"));
    // Seed team/app with an image, as alice.
    for (const blob of [image.config, image.layer]) {
      const put = await fetch(`${base}/v2/team/app/blobs/uploads/?digest=${blob.digest}`, {
        method: "POST",
        headers: { Authorization: basic("alice") },
        body: blob.bytes,
      });
      assert.equal(put.status, 201);
    }
    const put = await fetch(`${base}/v2/team/app/manifests/v1`, {
      method: "PUT",
      headers: { Authorization: basic("alice"), "Content-Type": ociManifestType },
      body: manifest.json,
    });
    assert.equal(put.status, 201);
  });

  after(async () => {
    await server?.dispose();
    await other?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  /** Every endpoint of team/app with the action it needs. */
  const endpoints = (
    uuid: string,
  ): { method: string; path: string; action: "pull" | "push" | "delete"; body?: string }[] => [
    { method: "GET", path: "/v2/team/app/tags/list", action: "pull" },
    { method: "GET", path: "/v2/team/app/manifests/v1", action: "pull" },
    { method: "HEAD", path: "/v2/team/app/manifests/v1", action: "pull" },
    { method: "GET", path: `/v2/team/app/blobs/${image.layer.digest}`, action: "pull" },
    { method: "HEAD", path: `/v2/team/app/blobs/${image.layer.digest}`, action: "pull" },
    { method: "GET", path: `/v2/team/app/referrers/${manifest.digest}`, action: "pull" },
    { method: "PUT", path: "/v2/team/app/manifests/v2", action: "push", body: manifest.json },
    { method: "POST", path: "/v2/team/app/blobs/uploads/", action: "push" },
    { method: "PATCH", path: `/v2/team/app/blobs/uploads/${uuid}`, action: "push", body: "x" },
    { method: "GET", path: `/v2/team/app/blobs/uploads/${uuid}`, action: "push" },
    { method: "DELETE", path: `/v2/team/app/blobs/uploads/${uuid}`, action: "push" },
    { method: "DELETE", path: "/v2/team/app/manifests/does-not-exist", action: "delete" },
    { method: "DELETE", path: `/v2/team/app/blobs/${randomBlob(1).digest}`, action: "delete" },
  ];

  const call = (method: string, path: string, authorization?: string, body?: string) =>
    fetch(`${base}${path}`, {
      method,
      headers: {
        ...(authorization ? { Authorization: authorization } : {}),
        ...(method === "PUT" ? { "Content-Type": ociManifestType } : {}),
      },
      body,
    });

  const expectUnauthorized = async (response: Response, what: string) => {
    assert.equal(response.status, 401, what);
    const challenge = response.headers.get("www-authenticate") ?? "";
    assert.match(
      challenge,
      /^Bearer realm="http:\/\/127\.0\.0\.1:\d+\/token",service="meridian"/,
      what,
    );
    // HEAD answers carry no body; every other 401 carries the spec's error body.
    const text = await response.text();
    if (text)
      assert.equal(
        (JSON.parse(text) as { errors: { code: string }[] }).errors[0]?.code,
        "UNAUTHORIZED",
        what,
      );
  };

  it("refuses every endpoint without credentials, with wrong credentials, and with another repository's token", async () => {
    const otherRepo = await token(base, "alice", "repository:team/other:pull,push,delete");
    for (const endpoint of endpoints("0f8fad5b-d9cb-469f-a165-70867728950e")) {
      const what = `${endpoint.method} ${endpoint.path}`;
      await expectUnauthorized(
        await call(endpoint.method, endpoint.path, undefined, endpoint.body),
        `${what} anonymous`,
      );
      // Bad credentials get the same full challenge as none, so a client can fetch a
      // token for the right scope.
      const scopeOf = (response: Response) =>
        /,scope="(repository:team\/app:[a-z,]+)"/.exec(
          response.headers.get("www-authenticate") ?? "",
        )?.[1];
      const none = await call(endpoint.method, endpoint.path, undefined, endpoint.body);
      const scope = scopeOf(none);
      assert.ok(scope, `${what}: the challenge names the scope`);
      const wrong = await call(
        endpoint.method,
        endpoint.path,
        basic("alice", "wrong"),
        endpoint.body,
      );
      await expectUnauthorized(wrong, `${what} wrong password`);
      assert.equal(scopeOf(wrong), scope, `${what} wrong password: scope`);
      const bad = await call(endpoint.method, endpoint.path, "Bearer not-a-token", endpoint.body);
      await expectUnauthorized(bad, `${what} bad token`);
      assert.equal(scopeOf(bad), scope, `${what} bad token: scope`);
      assert.match(bad.headers.get("www-authenticate") ?? "", /,error="invalid_token"$/);
      const response = await call(
        endpoint.method,
        endpoint.path,
        `Bearer ${otherRepo}`,
        endpoint.body,
      );
      await expectUnauthorized(response, `${what} token for another repository`);
      assert.match(
        response.headers.get("www-authenticate") ?? "",
        /scope="repository:team\/app:[a-z,]+",error="insufficient_scope"/,
      );
    }
    await expectUnauthorized(await call("GET", "/v2/"), "base anonymous");
    await expectUnauthorized(
      await call("GET", "/v2/_catalog", `Bearer ${otherRepo}`),
      "catalog without the catalog scope",
    );
  });

  it("refuses a token or user lacking the action, and allows it with the right token", async () => {
    const session = await fetch(`${base}/v2/team/app/blobs/uploads/`, {
      method: "POST",
      headers: { Authorization: basic("alice") },
    });
    const uuid = (session.headers.get("location") ?? "").split("/").pop() ?? "";
    const pullOnly = await token(base, "bob", "repository:team/app:pull,push,delete");
    const full = await token(base, "alice", "repository:team/app:pull,push,delete");
    for (const endpoint of endpoints(uuid)) {
      const what = `${endpoint.method} ${endpoint.path}`;
      const limited = await call(
        endpoint.method,
        endpoint.path,
        `Bearer ${pullOnly}`,
        endpoint.body,
      );
      if (endpoint.action === "pull") assert.notEqual(limited.status, 401, `${what} pull token`);
      else await expectUnauthorized(limited, `${what} pull-only token`);
      const basicBob = await call(endpoint.method, endpoint.path, basic("bob"), endpoint.body);
      if (endpoint.action !== "pull")
        assert.equal(basicBob.status, 403, `${what} Basic bob is denied`);
      const allowed = await call(endpoint.method, endpoint.path, `Bearer ${full}`, endpoint.body);
      assert.ok(![401, 403].includes(allowed.status), `${what} allowed, got ${allowed.status}`);
      assert.ok(allowed.status < 500, `${what} no 5xx`);
    }
    const manifestRead = await call("GET", "/v2/team/app/manifests/v1", `Bearer ${full}`);
    assert.equal(await manifestRead.text(), manifest.json);
  });

  it("issues tokens with POST (password and refresh grants) and honours repository-scoped tokens", async () => {
    const password = await fetch(`${base}/token`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "password",
        username: "alice",
        password: passwords.alice,
        service: "meridian",
        scope: "repository:team/app:pull",
      }),
    });
    assert.equal(password.status, 200);
    const { refresh_token: refresh } = (await password.json()) as { refresh_token: string };
    const refreshed = await fetch(`${base}/token`, {
      method: "POST",
      body: new URLSearchParams({
        grant_type: "refresh_token",
        refresh_token: refresh,
        service: "meridian",
        scope: "repository:team/app:pull",
      }),
    });
    assert.equal(refreshed.status, 200);
    const { access_token: access } = (await refreshed.json()) as { access_token: string };
    assert.equal((await call("GET", "/v2/team/app/manifests/v1", `Bearer ${access}`)).status, 200);
    const bad = await fetch(`${base}/token`, {
      method: "POST",
      body: new URLSearchParams({ grant_type: "password", username: "alice", password: "nope" }),
    });
    assert.equal(bad.status, 401);
    const ciToken = await token(base, "ci", "repository:team/app:pull,push");
    assert.equal((await call("GET", "/v2/team/app/manifests/v1", `Bearer ${ciToken}`)).status, 200);
    await expectUnauthorized(
      await call("POST", "/v2/team/app/blobs/uploads/", `Bearer ${ciToken}`),
      "ci token cannot push",
    );
  });

  it("accepts a token issued by one replica in another", async () => {
    const pull = await token(base, "bob", "repository:team/app:pull");
    const elsewhere = await fetch(`${other.url}/v2/team/app/tags/list`, {
      headers: { Authorization: `Bearer ${pull}` },
    });
    assert.notEqual(elsewhere.status, 401);
  });

  it("keeps user credentials off the change feed, and the peer credential off the admin API", async () => {
    const feed = `${base}/_meridian/replication/feed?since=0`;
    const adminToken = await token(base, "admin", "repository:team/app:pull,push,delete");
    for (const authorization of [basic("admin"), `Bearer ${adminToken}`, undefined]) {
      const response = await fetch(
        feed,
        authorization ? { headers: { Authorization: authorization } } : {},
      );
      assert.equal(response.status, 401, `feed with ${authorization?.split(" ")[0] ?? "nothing"}`);
    }
    const asPeer = await fetch(feed, { headers: { Authorization: `Bearer ${replicationSecret}` } });
    assert.equal(asPeer.status, 200);
    const body = JSON.stringify({ globalEndpointRouting: true });
    for (const authorization of [
      `Bearer ${replicationSecret}`,
      `Basic ${Buffer.from(`peer:${replicationSecret}`).toString("base64")}`,
    ]) {
      const response = await fetch(`${base}/_meridian/status`, {
        method: "PUT",
        body,
        headers: { Authorization: authorization },
      });
      assert.equal(response.status, 401, "the replication credential is not an admin");
    }
    assert.equal(
      (await call("GET", "/v2/team/app/tags/list", `Bearer ${replicationSecret}`)).status,
      401,
    );
  });

  it("allows anonymous pulls, and only pulls, when anonymousPull is on", async () => {
    const anonymousConfig = join(dir, "anonymous.yaml");
    await writeFile(
      anonymousConfig,
      stringify({
        auth: {
          signingKey: "test-signing-key-0123456789abcdef0123",
          anonymousPull: true,
          users: [
            {
              name: "alice",
              passwordHash: await hashSecret(passwords.alice),
              permissions: [{ repositories: "**", actions: ["pull", "push"] }],
            },
          ],
        },
      }),
    );
    const open = await startMeridian({ args: ["--config", anonymousConfig] });
    try {
      const blob = randomBlob(64);
      const pushed = await fetch(`${open.url}/v2/public/app/blobs/uploads/?digest=${blob.digest}`, {
        method: "POST",
        headers: { Authorization: basic("alice") },
        body: blob.bytes,
      });
      assert.equal(pushed.status, 201);
      const pulled = await fetch(`${open.url}/v2/public/app/blobs/${blob.digest}`);
      assert.deepEqual(Buffer.from(await pulled.arrayBuffer()), blob.bytes);
      const anonymousPush = await fetch(`${open.url}/v2/public/app/blobs/uploads/`, {
        method: "POST",
      });
      assert.equal(anonymousPush.status, 401);
      const anonymousToken = await fetch(
        `${open.url}/token?service=meridian&scope=repository:public/app:pull,push`,
      );
      const { token: granted } = (await anonymousToken.json()) as { token: string };
      const payload = JSON.parse(
        Buffer.from(granted.split(".")[1] ?? "", "base64url").toString(),
      ) as {
        access: { actions: string[] }[];
      };
      assert.deepEqual(payload.access[0]?.actions, ["pull"]);
    } finally {
      await open.dispose();
    }
  });

  it("keeps the admin API for admins", async () => {
    const body = JSON.stringify({ globalEndpointRouting: true });
    assert.equal((await fetch(`${base}/_meridian/status`, { method: "PUT", body })).status, 401);
    assert.equal(
      (
        await fetch(`${base}/_meridian/status`, {
          method: "PUT",
          body,
          headers: { Authorization: basic("alice") },
        })
      ).status,
      403,
    );
    assert.equal(
      (
        await fetch(`${base}/_meridian/status`, {
          method: "PUT",
          body,
          headers: { Authorization: basic("admin") },
        })
      ).status,
      200,
    );
    assert.equal((await call("GET", "/v2/_catalog", basic("admin"))).status, 200);
  });

  it("works with skopeo: --creds, login, and --registry-token", async () => {
    const layoutDir = join(dir, "layout");
    const layout = await OciLayoutBuilder.create(layoutDir);
    const built = await layout.addImage({ architecture: "amd64", os: "linux", layerSizes: [1024] });
    layout.tag(built.manifest, "v1");
    await layout.finish();
    const host = server.host;
    await skopeo.run([
      "copy",
      "--dest-tls-verify=false",
      "--dest-creds",
      `alice:${passwords.alice}`,
      `oci:${layoutDir}:v1`,
      `docker://${host}/team/skopeo:v1`,
    ]);
    const denied = await skopeo.runExpectingFailure([
      "copy",
      "--dest-tls-verify=false",
      "--dest-creds",
      `bob:${passwords.bob}`,
      `oci:${layoutDir}:v1`,
      `docker://${host}/team/skopeo:v2`,
    ]);
    assert.match(denied.stderr, /denied|unauthorized|authentication required/i);
    await skopeo.run([
      "login",
      "--tls-verify=false",
      "--username",
      "bob",
      "--password",
      passwords.bob,
      host,
    ]);
    const outDir = join(dir, "out");
    await skopeo.run([
      "copy",
      "--src-tls-verify=false",
      `docker://${host}/team/skopeo:v1`,
      `oci:${outDir}:v1`,
    ]);
    assert.equal((await readLayoutRef(outDir, "v1")).digest, built.manifest.digest);
    await skopeo.run(["logout", host]);
    const bearer = await token(base, "bob", "repository:team/skopeo:pull");
    const { stdout } = await skopeo.run([
      "inspect",
      "--tls-verify=false",
      "--registry-token",
      bearer,
      "--raw",
      `docker://${host}/team/skopeo:v1`,
    ]);
    assert.equal(stdout, built.manifestBytes.toString());
  });

  it("never writes passwords or tokens to the logs", async () => {
    const bearer = await token(base, "alice", "repository:team/app:pull");
    await call("GET", "/v2/team/app/tags/list", `Bearer ${bearer}`);
    const logs = server.recentOutput();
    assert.ok(logs.includes('"request"'), "debug request lines are there");
    for (const secret of [...Object.values(passwords), bearer])
      assert.ok(!logs.includes(secret), "a secret reached the logs");
  });

  it("manages users and tokens with the CLI, storing only hashes", async () => {
    const cliDir = await mkdtemp(join(tmpdir(), "meridian-cli-auth-"));
    try {
      const file = join(cliDir, "m.yaml");
      await writeFile(file, "auth:\n  signingKey: cli-signing-key-0123456789abcdef01\n");
      const cli = join(process.cwd(), "src/cli/meridian.ts");
      const run = (args: string[], input?: string) =>
        new Promise<string>((resolve, reject) => {
          const child = execFile(
            process.execPath,
            ["--import", "tsx", cli, ...args],
            { timeout: 30_000 },
            (error, stdout) => (error ? reject(error) : resolve(stdout)),
          );
          child.stdin?.end(input ?? "");
        });
      await run(
        ["user", "add", "carol", "--config", file, "--grant", "cli/**=pull,push"],
        "carol-password-1\n",
      );
      const tokenOut = await run([
        "token",
        "add",
        "deploy",
        "--config",
        file,
        "--grant",
        "cli/app=pull",
      ]);
      const secret = tokenOut.trim().split("\n").pop() ?? "";
      // A token named like a user lives beside the user; it does not replace it.
      const namesakeOut = await run([
        "token",
        "add",
        "carol",
        "--config",
        file,
        "--grant",
        "cli/app=pull",
      ]);
      const namesakeSecret = namesakeOut.trim().split("\n").pop() ?? "";
      const text = await readFile(file, "utf8");
      assert.ok(
        !text.includes("carol-password-1") && !text.includes(secret),
        "only hashes are stored",
      );
      assert.match(text, /passwordHash: scrypt\$/);
      const cliServer = await startMeridian({ args: ["--config", file] });
      try {
        const asCarol = await fetch(`${cliServer.url}/v2/`, {
          headers: {
            Authorization: `Basic ${Buffer.from("carol:carol-password-1").toString("base64")}`,
          },
        });
        assert.equal(asCarol.status, 200);
        const carolPush = await fetch(`${cliServer.url}/v2/cli/app/blobs/uploads/`, {
          method: "POST",
          headers: {
            Authorization: `Basic ${Buffer.from("carol:carol-password-1").toString("base64")}`,
          },
        });
        assert.equal(carolPush.status, 202, "the user carol keeps her own grants");
        const asCarolToken = await fetch(`${cliServer.url}/v2/cli/app/blobs/uploads/`, {
          method: "POST",
          headers: {
            Authorization: `Basic ${Buffer.from(`carol:${namesakeSecret}`).toString("base64")}`,
          },
        });
        assert.equal(asCarolToken.status, 403, "the token carol has only its pull grant");
        const asDeploy = await fetch(`${cliServer.url}/v2/cli/app/tags/list`, {
          headers: { Authorization: `Basic ${Buffer.from(`deploy:${secret}`).toString("base64")}` },
        });
        assert.equal(asDeploy.status, 404, "authorized, the repository just does not exist");
        const pushAttempt = await fetch(`${cliServer.url}/v2/cli/app/blobs/uploads/`, {
          method: "POST",
          headers: { Authorization: `Basic ${Buffer.from(`deploy:${secret}`).toString("base64")}` },
        });
        assert.equal(pushAttempt.status, 403);
      } finally {
        await cliServer.dispose();
      }
      await run(["user", "remove", "carol", "--config", file]);
      const left = parse(await readFile(file, "utf8")) as {
        auth: { users: { name: string }[]; tokens: { name: string }[] };
      };
      assert.deepEqual(
        left.auth.users.map((u) => u.name),
        [],
        "the user is gone",
      );
      assert.deepEqual(
        left.auth.tokens.map((t) => t.name),
        ["deploy", "carol"],
        "the namesake token stays",
      );
    } finally {
      await rm(cliDir, { recursive: true, force: true });
    }
  });

  it("serves HTTPS from certificate files", async () => {
    const certDir = await mkdtemp(join(tmpdir(), "meridian-tls-"));
    try {
      const { cert, key } = await selfSignedCertificate(certDir);
      const tlsConfig = join(certDir, "tls.yaml");
      await writeFile(tlsConfig, stringify({ tls: { cert, key } }));
      const secure = await startMeridian({ args: ["--config", tlsConfig] });
      try {
        assert.match(secure.url, /^https:\/\//);
        const { status } = await httpsGetTrusting(`${secure.url}/v2/`, cert);
        assert.equal(status, 200);
      } finally {
        await secure.dispose();
      }
    } finally {
      await rm(certDir, { recursive: true, force: true });
    }
  });

  it("refuses to serve a non-loopback address without users, unless told to", async () => {
    const plain = await mkdtemp(join(tmpdir(), "meridian-noauth-"));
    try {
      const cli = join(process.cwd(), "src/cli/meridian.ts");
      const refused = await promisify(execFile)(
        process.execPath,
        ["--import", "tsx", cli, "serve", "--listen", "0.0.0.0:0", "--data", plain],
        {
          timeout: 20_000,
        },
      ).then(
        () => undefined,
        (error: { code?: number; stderr?: string }) => error,
      );
      assert.equal(refused?.code, 2);
      assert.match(refused?.stderr ?? "", /without authentication/);
      const allowed = await startMeridian({
        dataDir: plain,
        args: ["--listen", "0.0.0.0:0", "--insecure-no-auth", "--allow-http"],
      });
      await allowed.stop();
    } finally {
      await rm(plain, { recursive: true, force: true });
    }
  });
});
