// End-to-end: server-side import from another registry process. The source is a second
// Meridian with token authentication (a user that may only pull), reached through a
// proxy that counts requests and can throttle; the target replica does the copy. Checks:
// identical digests for a two-platform index, its children and its referrer, a pull by
// skopeo, a second run that moves nothing, the tag overwrite rule, 429 + Retry-After,
// --platform, refused credentials, and no password in answers, records or logs.
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { stringify } from "yaml";
import { hashSecret } from "../../src/auth/password-hash.ts";
import {
  pushTwoPlatformImage,
  runImport,
  type SourceProxy,
  startSourceProxy,
  twoPlatformImage,
} from "../support/import-source.ts";
import { type MeridianProcess, startMeridian } from "../support/meridian-process.ts";
import {
  imageManifest,
  ociIndexType,
  ociManifestType,
  randomBlob,
} from "../support/oci-fixtures.ts";
import { createSkopeo } from "../support/skopeo.ts";

const adminPassword = "source-admin-password-1";
const pullerPassword = "puller-secret-password-7";
const basic = (name: string, password: string) =>
  `Basic ${Buffer.from(`${name}:${password}`).toString("base64")}`;

describe("meridian import from another registry", () => {
  let dir: string;
  let source: MeridianProcess;
  let target: MeridianProcess;
  let proxy: SourceProxy;
  const image = twoPlatformImage();
  const other = { config: randomBlob(120), layer: randomBlob(4096) };
  const otherManifest = imageManifest(other.config, [other.layer]);
  const big = { config: randomBlob(100), layer: randomBlob(3 * 1024 * 1024) };
  const bigManifest = imageManifest(big.config, [big.layer]);

  const importFrom = (body: Record<string, unknown>) =>
    runImport(target.url, { username: "puller", password: pullerPassword, ...body });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "meridian-import-"));
    const config = join(dir, "source.yaml");
    await writeFile(
      config,
      stringify({
        auth: {
          signingKey: "import-source-signing-key-0123456789",
          users: [
            { name: "admin", passwordHash: await hashSecret(adminPassword), admin: true },
            {
              name: "puller",
              passwordHash: await hashSecret(pullerPassword),
              permissions: [{ repositories: "library/**", actions: ["pull"] }],
            },
          ],
        },
      }),
    );
    source = await startMeridian({ args: ["--config", config] });
    // Debug logging on the target: every request is logged, so a leaked password would show.
    target = await startMeridian({ env: { MERIDIAN_LOG_LEVEL: "debug" } });
    proxy = await startSourceProxy(source.url);
    const admin = basic("admin", adminPassword);
    await pushTwoPlatformImage(source.url, "library/app", "v1", image, { authorization: admin });
    const single = [
      { repo: "library/other", blobs: [other.config, other.layer], manifest: otherManifest },
      { repo: "library/big", blobs: [big.config, big.layer], manifest: bigManifest },
    ];
    for (const { repo, blobs, manifest } of single) {
      for (const blob of blobs) {
        const put = await fetch(`${source.url}/v2/${repo}/blobs/uploads/?digest=${blob.digest}`, {
          method: "POST",
          headers: { Authorization: admin },
          body: blob.bytes,
        });
        assert.equal(put.status, 201);
      }
      const put = await fetch(`${source.url}/v2/${repo}/manifests/v1`, {
        method: "PUT",
        headers: { Authorization: admin, "Content-Type": ociManifestType },
        body: manifest.json,
      });
      assert.equal(put.status, 201);
    }
  });

  after(async () => {
    await proxy?.close();
    await source?.dispose();
    await target?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it("copies a two-platform index with its children and referrer: same digests, pullable", async () => {
    const job = await importFrom({
      source: `${proxy.host}/library/app:v1`,
      image: "mirror/app:v1",
      withReferrers: true,
    });
    assert.equal(job.state, "succeeded", job.reason);
    assert.equal(job.digest, image.index.digest);
    assert.equal(job.progress.blobsTotal, image.blobs.length);
    assert.equal(job.progress.blobsDone, image.blobs.length);
    assert.equal(job.progress.bytesDone, job.progress.bytesTotal);

    const tagged = await fetch(`${target.url}/v2/mirror/app/manifests/v1`, {
      headers: { Accept: ociIndexType },
    });
    assert.equal(tagged.status, 200);
    assert.equal(tagged.headers.get("docker-content-digest"), image.index.digest);
    assert.equal(await tagged.text(), image.index.json);
    for (const manifest of [image.amd64, image.arm64, image.referrer]) {
      const got = await fetch(`${target.url}/v2/mirror/app/manifests/${manifest.digest}`);
      assert.equal(got.status, 200, manifest.digest);
      assert.equal(await got.text(), manifest.json);
    }
    for (const blob of image.blobs) {
      const got = await fetch(`${target.url}/v2/mirror/app/blobs/${blob.digest}`);
      assert.equal(got.status, 200);
      assert.deepEqual(Buffer.from(await got.arrayBuffer()), blob.bytes);
    }
    const referrers = (await (
      await fetch(`${target.url}/v2/mirror/app/referrers/${image.index.digest}`)
    ).json()) as {
      manifests: { digest: string }[];
    };
    assert.deepEqual(
      referrers.manifests.map((m) => m.digest),
      [image.referrer.digest],
    );

    const skopeo = await createSkopeo(join(dir, "skopeo"));
    await skopeo.run([
      "copy",
      "--all",
      "--preserve-digests",
      "--src-tls-verify=false",
      `docker://${target.host}/mirror/app:v1`,
      `oci:${join(dir, "pulled")}:v1`,
    ]);
    const layout = JSON.parse(await readFile(join(dir, "pulled", "index.json"), "utf8")) as {
      manifests: { digest: string }[];
    };
    assert.equal(layout.manifests[0]?.digest, image.index.digest);
  });

  it("transfers nothing the second time, not even a manifest", async () => {
    proxy.reset();
    const job = await importFrom({
      source: `${proxy.host}/library/app:v1`,
      image: "mirror/app:v1",
      withReferrers: true,
    });
    assert.equal(job.state, "succeeded", job.reason);
    assert.equal(job.progress.bytesTransferred, 0);
    assert.equal(job.progress.blobsSkipped, image.blobs.length);
    assert.equal(proxy.counts.blobGets, 0, "no blob was read from the source");
    assert.equal(
      proxy.counts.manifestGets,
      0,
      "manifests stored here are read here (a HEAD names the tag's)",
    );
  });

  it("links blobs stored for another repository instead of copying them", async () => {
    proxy.reset();
    const job = await importFrom({
      source: `${proxy.host}/library/app:v1`,
      image: "second/app:v1",
    });
    assert.equal(job.state, "succeeded", job.reason);
    assert.equal(proxy.counts.blobGets, 0);
    assert.equal(
      (await fetch(`${target.url}/v2/second/app/manifests/v1`)).headers.get(
        "docker-content-digest",
      ),
      image.index.digest,
    );
  });

  it("refuses to move an existing tag to another image without force, and moves it with force", async () => {
    const refused = await importFrom({
      source: `${proxy.host}/library/other:v1`,
      image: "mirror/app:v1",
    });
    assert.equal(refused.state, "failed");
    assert.match(refused.reason ?? "", /mirror\/app:v1 already exists .*--force/);
    const kept = await fetch(`${target.url}/v2/mirror/app/manifests/v1`, { method: "HEAD" });
    assert.equal(kept.headers.get("docker-content-digest"), image.index.digest);

    const forced = await importFrom({
      source: `${proxy.host}/library/other:v1`,
      image: "mirror/app:v1",
      force: true,
    });
    assert.equal(forced.state, "succeeded", forced.reason);
    const moved = await fetch(`${target.url}/v2/mirror/app/manifests/v1`, { method: "HEAD" });
    assert.equal(moved.headers.get("docker-content-digest"), otherManifest.digest);
  });

  it("waits when the source answers 429 with Retry-After, and succeeds", async () => {
    proxy.reset();
    proxy.throttleNext(2);
    const job = await importFrom({
      source: `${proxy.host}/library/app:v1`,
      image: "throttled/app:v1",
    });
    assert.equal(job.state, "succeeded", job.reason);
    assert.equal(proxy.counts.throttled, 2);
    assert.ok(job.progress.throttled >= 1, JSON.stringify(job.progress));
    assert.equal(
      (await fetch(`${target.url}/v2/throttled/app/manifests/v1`)).headers.get(
        "docker-content-digest",
      ),
      image.index.digest,
    );
  });

  it("resumes a blob whose stream broke from where it stopped, with Range", async () => {
    proxy.reset();
    proxy.cutBlobAfter(big.layer.digest, 2 * 1024 * 1024 + 12345);
    const job = await importFrom({ source: `${proxy.host}/library/big:v1`, image: "big/app:v1" });
    assert.equal(job.state, "succeeded", job.reason);
    assert.equal(proxy.ranges.length, 1, JSON.stringify(proxy.ranges));
    const from = Number(/^bytes=(\d+)-$/.exec(proxy.ranges[0] ?? "")?.[1]);
    assert.ok(from > 0 && from <= 2 * 1024 * 1024 + 12345, proxy.ranges[0]);
    const got = await fetch(`${target.url}/v2/big/app/blobs/${big.layer.digest}`);
    assert.deepEqual(Buffer.from(await got.arrayBuffer()), big.layer.bytes);
    assert.ok(job.progress.bytesTransferred < big.layer.size + big.config.size + 2 * 1024 * 1024);
  });

  it("imports one platform of an index: the tag names that platform's manifest", async () => {
    const job = await importFrom({
      source: `${proxy.host}/library/app@${image.index.digest}`,
      image: "single/app:arm",
      platform: "linux/arm64",
    });
    assert.equal(job.state, "succeeded", job.reason);
    assert.equal(job.digest, image.arm64.digest);
    const tagged = await fetch(`${target.url}/v2/single/app/manifests/arm`);
    assert.equal(tagged.headers.get("docker-content-digest"), image.arm64.digest);
    assert.equal(
      (await fetch(`${target.url}/v2/single/app/manifests/${image.index.digest}`)).status,
      404,
    );
    assert.equal(
      (await fetch(`${target.url}/v2/single/app/manifests/${image.amd64.digest}`)).status,
      404,
    );
    const missing = await importFrom({
      source: `${proxy.host}/library/app:v1`,
      image: "single/app:s390x",
      platform: "linux/s390x",
    });
    assert.equal(missing.state, "failed");
    assert.match(missing.reason ?? "", /no linux\/s390x manifest .*linux\/amd64, linux\/arm64\/v8/);
  });

  it("fails with a clear reason on refused credentials and without them", async () => {
    const wrong = await runImport(target.url, {
      source: `${proxy.host}/library/app:v1`,
      image: "nope/app:v1",
      username: "puller",
      password: "not-the-password",
    });
    assert.equal(wrong.state, "failed");
    assert.match(wrong.reason ?? "", /refused the username or password/);
    const anonymous = await runImport(target.url, {
      source: `${proxy.host}/library/app:v1`,
      image: "nope/app:v1",
    });
    assert.equal(anonymous.state, "failed");
    assert.match(anonymous.reason ?? "", /requires authentication/);
    const denied = await importFrom({
      source: `${proxy.host}/team/secret:v1`,
      image: "nope/app:v1",
    });
    assert.equal(denied.state, "failed");
    assert.match(denied.reason ?? "", /refused access|no manifest/);
  });

  it("refuses a cloud metadata address before sending it anything", async () => {
    const job = await runImport(target.url, { source: "169.254.169.254/latest/meta-data:x" });
    assert.equal(job.state, "failed");
    assert.match(job.reason ?? "", /link-local or cloud metadata address/);
  });

  it("answers bad requests with 400 and unknown jobs with 404", async () => {
    const bad = await fetch(`${target.url}/_meridian/admin/imports`, {
      method: "POST",
      body: JSON.stringify({ source: "nohost" }),
    });
    assert.equal(bad.status, 400);
    assert.equal(
      ((await bad.json()) as { errors: { code: string }[] }).errors[0]?.code,
      "UNSUPPORTED",
    );
    const extra = await fetch(`${target.url}/_meridian/admin/imports`, {
      method: "POST",
      body: JSON.stringify({ source: "a.b/c:d", bogus: 1 }),
    });
    assert.equal(extra.status, 400);
    assert.equal(
      (await fetch(`${target.url}/_meridian/admin/imports/00000000-0000-0000-0000-000000000000`))
        .status,
      404,
    );
  });

  it("never shows or keeps the source password", async () => {
    const list = await (await fetch(`${target.url}/_meridian/admin/imports`)).text();
    assert.ok(JSON.parse(list).length >= 8);
    assert.doesNotMatch(list, new RegExp(pullerPassword));
    const records = join(target.dataDir, "imports");
    for (const file of await readdir(records)) {
      assert.doesNotMatch(await readFile(join(records, file), "utf8"), new RegExp(pullerPassword));
    }
    assert.doesNotMatch(target.recentOutput(), new RegExp(pullerPassword));
  });
});
