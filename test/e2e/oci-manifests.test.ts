// End-to-end: manifests, tags, referrers and listings of the Distribution API against a
// real process.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type MeridianProcess, startMeridian } from "../support/meridian-process.ts";
import {
  dockerManifestType,
  imageIndex,
  imageManifest,
  ociIndexType,
  ociManifestType,
  randomBlob,
  type TestBlob,
} from "../support/oci-fixtures.ts";
import { expectError, pushBlob, pushManifest } from "../support/registry-http.ts";

describe("manifests, tags, referrers and listings", () => {
  let server: MeridianProcess;
  let base: string;
  before(async () => {
    server = await startMeridian();
    base = server.url;
  });
  after(() => server.dispose());

  async function pushImage(repo: string, tag: string, mediaType = ociManifestType) {
    const config = randomBlob(200);
    const layers = [randomBlob(1000), randomBlob(3000)];
    for (const blob of [config, ...layers]) await pushBlob(base, repo, blob);
    const manifest = imageManifest(config, layers, {}, mediaType);
    const response = await pushManifest(base, repo, tag, manifest, mediaType);
    assert.equal(response.status, 201, await response.text());
    return manifest;
  }

  it("stores an image manifest by tag and serves it by tag and by digest, byte for byte", async () => {
    const manifest = await pushImage("img/app", "v1");
    for (const reference of ["v1", manifest.digest]) {
      const response = await fetch(`${base}/v2/img/app/manifests/${reference}`, {
        headers: { Accept: ociManifestType },
      });
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("content-type"), ociManifestType);
      assert.equal(response.headers.get("docker-content-digest"), manifest.digest);
      assert.equal(await response.text(), manifest.json);
    }
    const head = await fetch(`${base}/v2/img/app/manifests/v1`, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("content-length"), String(manifest.size));
    assert.equal(head.headers.get("docker-content-digest"), manifest.digest);
  });

  it("answers PUT with Location and Docker-Content-Digest", async () => {
    const config = randomBlob(10);
    await pushBlob(base, "put/app", config);
    const manifest = imageManifest(config, []);
    const response = await pushManifest(base, "put/app", "latest", manifest, ociManifestType);
    assert.equal(response.status, 201);
    assert.equal(response.headers.get("location"), `/v2/put/app/manifests/${manifest.digest}`);
    assert.equal(response.headers.get("docker-content-digest"), manifest.digest);
  });

  it("stores Docker schema 2 manifests and manifest lists", async () => {
    const manifest = await pushImage("docker/app", "v2", dockerManifestType);
    const get = await fetch(`${base}/v2/docker/app/manifests/v2`, {
      headers: { Accept: dockerManifestType },
    });
    assert.equal(get.headers.get("content-type"), dockerManifestType);
    const list = JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.docker.distribution.manifest.list.v2+json",
      manifests: [
        {
          mediaType: dockerManifestType,
          digest: manifest.digest,
          size: manifest.size,
          platform: { os: "linux", architecture: "amd64" },
        },
      ],
    });
    const put = await fetch(`${base}/v2/docker/app/manifests/multi`, {
      method: "PUT",
      headers: { "Content-Type": "application/vnd.docker.distribution.manifest.list.v2+json" },
      body: list,
    });
    assert.equal(put.status, 201, await put.text());
  });

  it("rejects a manifest whose blobs or child manifests are missing", async () => {
    const config = randomBlob(10);
    await pushBlob(base, "refs/app", config);
    const missingLayer = randomBlob(10);
    const manifest = imageManifest(config, [missingLayer]);
    const error = await expectError(
      await pushManifest(base, "refs/app", "broken", manifest, ociManifestType),
      400,
      "MANIFEST_BLOB_UNKNOWN",
    );
    assert.deepEqual((error.detail as { digest: string }).digest, missingLayer.digest);
    await expectError(await fetch(`${base}/v2/refs/app/manifests/broken`), 404, "MANIFEST_UNKNOWN");
    const index = imageIndex([{ digest: manifest.digest, size: manifest.size }]);
    await expectError(
      await pushManifest(base, "refs/app", "idx", index, ociIndexType),
      400,
      "MANIFEST_BLOB_UNKNOWN",
    );
  });

  it("does not let a manifest reference a blob linked only in another repository", async () => {
    const config = randomBlob(10);
    await pushBlob(base, "other/repo", config);
    const manifest = imageManifest(config, []);
    await expectError(
      await pushManifest(base, "mine/repo", "t", manifest, ociManifestType),
      400,
      "MANIFEST_BLOB_UNKNOWN",
    );
  });

  it("stores an index whose children exist, and serves it with its media type", async () => {
    const amd = await pushImage("multi/app", "amd64");
    const arm = await pushImage("multi/app", "arm64");
    const index = imageIndex([
      { digest: amd.digest, size: amd.size, platform: { os: "linux", architecture: "amd64" } },
      { digest: arm.digest, size: arm.size, platform: { os: "linux", architecture: "arm64" } },
    ]);
    assert.equal(
      (await pushManifest(base, "multi/app", "latest", index, ociIndexType)).status,
      201,
    );
    const get = await fetch(`${base}/v2/multi/app/manifests/latest`, {
      headers: { Accept: `${ociManifestType}, ${ociIndexType}` },
    });
    assert.equal(get.headers.get("content-type"), ociIndexType);
    assert.equal(await get.text(), index.json);
  });

  it("refuses a manifest whose digest differs from the reference, invalid JSON, or a wrong media type", async () => {
    const config = randomBlob(10);
    await pushBlob(base, "invalid/app", config);
    const manifest = imageManifest(config, []);
    await expectError(
      await pushManifest(base, "invalid/app", randomBlob(1).digest, manifest, ociManifestType),
      400,
      "DIGEST_INVALID",
    );
    await expectError(
      await fetch(`${base}/v2/invalid/app/manifests/t`, {
        method: "PUT",
        headers: { "Content-Type": ociManifestType },
        body: "{",
      }),
      400,
      "MANIFEST_INVALID",
    );
    await expectError(
      await pushManifest(base, "invalid/app", "t", manifest, ociIndexType),
      400,
      "MANIFEST_INVALID",
    );
    await expectError(
      await pushManifest(base, "invalid/app", "bad tag!", manifest, ociManifestType),
      400,
      "TAG_INVALID",
    );
  });

  it("answers 404 MANIFEST_UNKNOWN to a GET or HEAD whose reference is neither a tag nor a digest", async () => {
    await pushImage("badref/app", "v1");
    const notReferences = [
      ".hidden",
      "-dash",
      "t".repeat(129),
      "sha256:nothex",
      `md5:${"a".repeat(32)}`,
      `sha256:${"A".repeat(64)}`,
    ];
    for (const reference of notReferences) {
      for (const method of ["GET", "HEAD"]) {
        await expectError(
          await fetch(`${base}/v2/badref/app/manifests/${reference}`, { method }),
          404,
          "MANIFEST_UNKNOWN",
        );
      }
    }
    const config = randomBlob(10);
    await pushBlob(base, "badref/app", config);
    await expectError(
      await pushManifest(base, "badref/app", ".hidden", imageManifest(config, []), ociManifestType),
      400,
      "TAG_INVALID",
    );
  });

  it("refuses manifests over 4 MiB with 413", async () => {
    const huge = JSON.stringify({
      schemaVersion: 2,
      mediaType: ociManifestType,
      pad: "x".repeat(4 * 1024 * 1024),
    });
    const response = await fetch(`${base}/v2/huge/app/manifests/t`, {
      method: "PUT",
      headers: { "Content-Type": ociManifestType },
      body: huge,
    });
    await expectError(response, 413, "MANIFEST_INVALID");
  });

  it("negotiates Accept: serves a listed or wildcard type, refuses a manifest type not listed", async () => {
    await pushImage("accept/app", "t");
    assert.equal(
      (await fetch(`${base}/v2/accept/app/manifests/t`, { headers: { Accept: "*/*" } })).status,
      200,
    );
    await expectError(
      await fetch(`${base}/v2/accept/app/manifests/t`, { headers: { Accept: dockerManifestType } }),
      404,
      "MANIFEST_UNKNOWN",
    );
  });

  it("stores artifacts with a subject, answers OCI-Subject, and lists referrers with a filter", async () => {
    const image = await pushImage("art/app", "v1");
    const empty = {
      bytes: Buffer.from("{}"),
      digest: "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
      size: 2,
    } as TestBlob;
    await pushBlob(base, "art/app", empty);
    const subject = { mediaType: ociManifestType, digest: image.digest, size: image.size };
    const artifact = (artifactType: string) =>
      imageManifest(empty, [], {
        artifactType,
        subject,
        annotations: { "org.example": artifactType },
      });
    const sbom = artifact("application/spdx+json");
    const signature = artifact("application/vnd.dev.cosign.simplesigning.v1+json");
    for (const manifest of [sbom, signature]) {
      const put = await pushManifest(base, "art/app", manifest.digest, manifest, ociManifestType);
      assert.equal(put.status, 201, await put.text());
      assert.equal(put.headers.get("oci-subject"), image.digest);
    }
    const all = await fetch(`${base}/v2/art/app/referrers/${image.digest}`);
    assert.equal(all.headers.get("content-type"), ociIndexType);
    const index = (await all.json()) as {
      manifests: { digest: string; artifactType: string; annotations: object }[];
    };
    assert.deepEqual(
      index.manifests.map((m) => m.digest).sort(),
      [sbom.digest, signature.digest].sort(),
    );
    const filtered = await fetch(
      `${base}/v2/art/app/referrers/${image.digest}?artifactType=application/spdx%2Bjson`,
    );
    assert.equal(filtered.headers.get("oci-filters-applied"), "artifactType");
    const only = (await filtered.json()) as {
      manifests: { digest: string; artifactType: string }[];
    };
    assert.deepEqual(
      only.manifests.map((m) => [m.digest, m.artifactType]),
      [[sbom.digest, "application/spdx+json"]],
    );
    const none = await fetch(`${base}/v2/art/app/referrers/${randomBlob(1).digest}`);
    assert.equal(none.status, 200);
    assert.deepEqual(((await none.json()) as { manifests: unknown[] }).manifests, []);
  });

  it("deletes a tag alone, or a manifest with all its tags", async () => {
    const manifest = await pushImage("delete/app", "a");
    assert.equal(
      (await pushManifest(base, "delete/app", "b", manifest, ociManifestType)).status,
      201,
    );
    assert.equal(
      (await fetch(`${base}/v2/delete/app/manifests/a`, { method: "DELETE" })).status,
      202,
    );
    await expectError(await fetch(`${base}/v2/delete/app/manifests/a`), 404, "MANIFEST_UNKNOWN");
    assert.equal((await fetch(`${base}/v2/delete/app/manifests/b`)).status, 200);
    assert.equal(
      (await fetch(`${base}/v2/delete/app/manifests/${manifest.digest}`, { method: "DELETE" }))
        .status,
      202,
    );
    await expectError(await fetch(`${base}/v2/delete/app/manifests/b`), 404, "MANIFEST_UNKNOWN");
    await expectError(
      await fetch(`${base}/v2/delete/app/manifests/${manifest.digest}`),
      404,
      "MANIFEST_UNKNOWN",
    );
    await expectError(
      await fetch(`${base}/v2/delete/app/manifests/${manifest.digest}`, { method: "DELETE" }),
      404,
      "MANIFEST_UNKNOWN",
    );
    const tags = (await (await fetch(`${base}/v2/delete/app/tags/list`)).json()) as {
      tags: string[];
    };
    assert.deepEqual(tags.tags, []);
  });

  it("lists tags in lexical order, page by page with Link headers", async () => {
    const manifest = await pushImage("paged/app", "seed");
    const tags = ["seed"];
    for (let i = 0; i < 12; i += 1) {
      const tag = `t${String(i).padStart(2, "0")}`;
      tags.push(tag);
      assert.equal(
        (await pushManifest(base, "paged/app", tag, manifest, ociManifestType)).status,
        201,
      );
    }
    tags.sort();
    const full = (await (await fetch(`${base}/v2/paged/app/tags/list`)).json()) as {
      name: string;
      tags: string[];
    };
    assert.deepEqual(full, { name: "paged/app", tags });
    const walked: string[] = [];
    let next: string | undefined = "/v2/paged/app/tags/list?n=5";
    while (next) {
      const response: Response = await fetch(`${base}${next}`);
      walked.push(...((await response.json()) as { tags: string[] }).tags);
      next = /<([^>]+)>;\s*rel="next"/.exec(response.headers.get("link") ?? "")?.[1];
    }
    assert.deepEqual(walked, tags);
    const afterLast = (await (await fetch(`${base}/v2/paged/app/tags/list?last=t05`)).json()) as {
      tags: string[];
    };
    assert.deepEqual(
      afterLast.tags,
      tags.filter((t) => t > "t05"),
    );
    await expectError(
      await fetch(`${base}/v2/paged/app/tags/list?n=-1`),
      400,
      "PAGINATION_NUMBER_INVALID",
    );
    await expectError(await fetch(`${base}/v2/never/pushed/tags/list`), 404, "NAME_UNKNOWN");
  });

  it("lists repositories in the catalog, page by page", async () => {
    for (const repo of ["cat/b", "cat/a", "cat/c"]) await pushBlob(base, repo, randomBlob(5));
    const all = (await (await fetch(`${base}/v2/_catalog`)).json()) as { repositories: string[] };
    const expected = [...all.repositories].sort();
    assert.deepEqual(all.repositories, expected);
    for (const repo of ["cat/a", "cat/b", "cat/c"]) assert.ok(all.repositories.includes(repo));
    const first = await fetch(`${base}/v2/_catalog?n=2`);
    assert.deepEqual(
      ((await first.json()) as { repositories: string[] }).repositories,
      expected.slice(0, 2),
    );
    assert.match(first.headers.get("link") ?? "", /^<\/v2\/_catalog\?n=2&last=[^>]+>; rel="next"$/);
  });
});
