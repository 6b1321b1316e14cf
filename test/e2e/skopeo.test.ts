// End-to-end tests of Meridian with the real skopeo client: OCI layouts built in code are copied
// into a Meridian process and back out (single image, two-platform index, Docker schema 2),
// inspected, listed, deleted, and the HTTP API that skopeo relies on is checked byte for byte.
// Owns: this file. Helpers: test/support/{oci-layout,skopeo,tar,server-log}.ts.
//
// SKOPEO_E2E_REGISTRY=host:port runs the same tests against an already running registry (e.g. the
// CNCF Distribution registry, to tell a client problem from a server one) instead of Meridian.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type MeridianProcess, startMeridian } from "../support/meridian-process.ts";
import {
  type BuiltImage,
  type BuiltIndex,
  collectReachableBlobs,
  type Descriptor,
  MEDIA_TYPES,
  OciLayoutBuilder,
  readLayoutRef,
  sha256Digest,
} from "../support/oci-layout.ts";
import { attachServerLog, type ServerLog } from "../support/server-log.ts";
import { createSkopeo, type Skopeo } from "../support/skopeo.ts";

const TEST_TIMEOUT_MS = 240_000;

/** The Accept header skopeo sends for manifests, all types at once. */
const MANIFEST_ACCEPT = [
  MEDIA_TYPES.ociManifest,
  MEDIA_TYPES.ociIndex,
  MEDIA_TYPES.dockerManifest,
  MEDIA_TYPES.dockerManifestList,
].join(", ");

interface InspectOutput {
  Name: string;
  Digest: string;
  RepoTags: string[];
  Created: string;
  Architecture: string;
  Os: string;
  Layers: string[];
  Labels: Record<string, string> | null;
}

interface ListTagsOutput {
  Repository: string;
  Tags: string[];
}

describe("skopeo against a real Meridian process", () => {
  let server: MeridianProcess | undefined;
  let serverLog: ServerLog | undefined;
  let host = "";
  let baseUrl = "";
  let workDir = "";
  let sourceDir = "";
  let skopeo: Skopeo;
  let multiLayer: BuiltImage;
  let small: BuiltImage;
  let twoPlatform: BuiltIndex;
  let outputCount = 0;

  const noTls = "--tls-verify=false";
  const noRetry = ["--retry-times", "0"];
  const docker = (repoAndTag: string): string => `docker://${host}/${repoAndTag}`;
  const source = (tag: string): string => `oci:${sourceDir}:${tag}`;
  const freshOutputDir = (): string => join(workDir, `out-${++outputCount}`);
  /** Appends the registry's recent log lines to a failure, so the report says what it answered. */
  const withLog = (message: string): string =>
    serverLog ? `${message}\n--- registry log (tail) ---\n${serverLog.tail()}` : message;

  const registryTest = (name: string, body: () => Promise<void>): void => {
    it(name, { timeout: TEST_TIMEOUT_MS }, async () => {
      try {
        await body();
      } catch (error) {
        if (error instanceof Error) error.message = withLog(error.message);
        throw error;
      }
    });
  };

  const push = async (from: string, to: string, ...flags: string[]): Promise<void> => {
    await skopeo.run(["copy", ...noRetry, "--dest-tls-verify=false", ...flags, from, to]);
  };
  const pull = async (from: string, to: string, ...flags: string[]): Promise<void> => {
    await skopeo.run(["copy", ...noRetry, "--src-tls-verify=false", ...flags, from, to]);
  };
  const inspect = async (reference: string, ...flags: string[]): Promise<InspectOutput> => {
    const { stdout } = await skopeo.run(["inspect", ...noRetry, noTls, ...flags, reference]);
    return JSON.parse(stdout) as InspectOutput;
  };
  const inspectRaw = async (reference: string, ...flags: string[]): Promise<string> => {
    const { stdout } = await skopeo.run([
      "inspect",
      ...noRetry,
      noTls,
      "--raw",
      ...flags,
      reference,
    ]);
    return stdout;
  };
  const listTags = async (repo: string): Promise<ListTagsOutput> => {
    const { stdout } = await skopeo.run([
      "list-tags",
      ...noRetry,
      noTls,
      `docker://${host}/${repo}`,
    ]);
    return JSON.parse(stdout) as ListTagsOutput;
  };

  /** Every blob reachable from `root` in the source layout is in `outDir` with the same bytes. */
  const assertSameBlobs = async (outDir: string, root: Descriptor, expectedCount: number) => {
    const expected = await collectReachableBlobs(sourceDir, root);
    const actual = await collectReachableBlobs(outDir, root);
    assert.equal(expected.size, expectedCount, "fixture sanity: reachable blob count");
    assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort(), "same blob digests");
    for (const [digest, bytes] of expected) {
      const copy = actual.get(digest);
      assert.ok(copy?.equals(bytes), `blob ${digest} differs after the round trip`);
    }
  };

  before(async () => {
    workDir = await mkdtemp(join(tmpdir(), "meridian-skopeo-"));
    sourceDir = join(workDir, "source");
    const layout = await OciLayoutBuilder.create(sourceDir);
    multiLayer = await layout.addImage({
      architecture: "amd64",
      os: "linux",
      layerSizes: [1024, 300 * 1024, 3 * 1024 * 1024],
    });
    small = await layout.addImage({ architecture: "amd64", os: "linux", layerSizes: [512] });
    twoPlatform = await layout.addIndex([
      { architecture: "amd64", os: "linux", layerSizes: [2048, 64 * 1024] },
      { architecture: "arm64", os: "linux", variant: "v8", layerSizes: [4096, 128 * 1024] },
    ]);
    layout.tag(multiLayer.manifest, "v1");
    layout.tag(small.manifest, "small");
    layout.tag(twoPlatform.index, "multiarch");
    await layout.finish();

    skopeo = await createSkopeo(join(workDir, "skopeo"));

    const external = process.env.SKOPEO_E2E_REGISTRY;
    if (external) {
      host = external;
      baseUrl = `http://${external}`;
    } else {
      server = await startMeridian();
      serverLog = attachServerLog(server.child);
      host = server.host;
      baseUrl = server.url;
    }
  });

  after(async () => {
    await server?.dispose();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  registryTest("round-trips a multi-layer OCI image byte for byte", async () => {
    const digestFile = join(workDir, "multi.digest");
    await push(
      source("v1"),
      docker("e2e/multi:v1"),
      "--preserve-digests",
      "--digestfile",
      digestFile,
    );
    assert.equal(
      (await readFile(digestFile, "utf8")).trim(),
      multiLayer.manifest.digest,
      "digest skopeo reports for the pushed manifest",
    );

    const outDir = freshOutputDir();
    await pull(docker("e2e/multi:v1"), `oci:${outDir}:v1`, "--preserve-digests");
    const pulled = await readLayoutRef(outDir, "v1");
    assert.equal(pulled.digest, multiLayer.manifest.digest, "manifest digest after the round trip");
    assert.equal(pulled.mediaType, MEDIA_TYPES.ociManifest);
    assert.equal(pulled.size, multiLayer.manifest.size);
    await assertSameBlobs(outDir, multiLayer.manifest, 5);
  });

  registryTest("round-trips a two-platform OCI index with --multi-arch all", async () => {
    await push(
      source("multiarch"),
      docker("e2e/index:multiarch"),
      "--multi-arch",
      "all",
      "--preserve-digests",
    );

    const outDir = freshOutputDir();
    await pull(
      docker("e2e/index:multiarch"),
      `oci:${outDir}:multiarch`,
      "--multi-arch",
      "all",
      "--preserve-digests",
    );
    const pulled = await readLayoutRef(outDir, "multiarch");
    assert.equal(pulled.digest, twoPlatform.index.digest, "index digest after the round trip");
    assert.equal(pulled.mediaType, MEDIA_TYPES.ociIndex);
    // index + 2 × (manifest + config + 2 layers)
    await assertSameBlobs(outDir, twoPlatform.index, 9);

    // Each platform is also reachable on its own, by digest.
    for (const image of twoPlatform.images) {
      const raw = await inspectRaw(docker(`e2e/index@${image.manifest.digest}`));
      assert.equal(raw, image.manifestBytes.toString("utf8"), `child ${image.manifest.digest}`);
    }
  });

  registryTest("inspect reports digest, layers and platform; --raw gives exact bytes", async () => {
    await push(source("v1"), docker("e2e/inspect:v1"), "--preserve-digests");
    await push(
      source("multiarch"),
      docker("e2e/inspect:multiarch"),
      "--multi-arch",
      "all",
      "--preserve-digests",
    );

    const info = await inspect(docker("e2e/inspect:v1"));
    assert.equal(info.Digest, multiLayer.manifest.digest);
    assert.deepEqual(
      info.Layers,
      multiLayer.layers.map((layer) => layer.digest),
    );
    assert.equal(info.Architecture, "amd64");
    assert.equal(info.Os, "linux");
    assert.equal(info.Created, "2024-01-02T03:04:05Z");
    assert.equal(info.Labels?.["org.example.fixture"], "meridian-e2e");
    assert.equal(info.Name, `${host}/e2e/inspect`);
    assert.deepEqual([...info.RepoTags].sort(), ["multiarch", "v1"]);

    assert.equal(
      await inspectRaw(docker("e2e/inspect:v1")),
      multiLayer.manifestBytes.toString("utf8"),
      "inspect --raw returns the manifest bytes as pushed",
    );
    assert.equal(
      await inspectRaw(docker(`e2e/inspect@${multiLayer.manifest.digest}`), "--config"),
      multiLayer.configBytes.toString("utf8"),
      "inspect --raw --config returns the config blob as pushed",
    );
    assert.equal(
      await inspectRaw(docker("e2e/inspect:multiarch")),
      twoPlatform.indexBytes.toString("utf8"),
      "inspect --raw on an index returns the index bytes as pushed",
    );

    // Through the index, skopeo picks the platform asked for.
    const arm = twoPlatform.images[1];
    assert.ok(arm);
    const armInfo = await skopeo.run([
      "--override-os",
      "linux",
      "--override-arch",
      "arm64",
      "--override-variant",
      "v8",
      "inspect",
      ...noRetry,
      noTls,
      docker("e2e/inspect:multiarch"),
    ]);
    const parsed = JSON.parse(armInfo.stdout) as InspectOutput;
    assert.equal(parsed.Architecture, "arm64");
    assert.deepEqual(
      parsed.Layers,
      arm.layers.map((layer) => layer.digest),
    );
  });

  registryTest("list-tags lists every tag of a repository", async () => {
    await push(source("v1"), docker("e2e/tags:v1"), "--preserve-digests");
    await push(source("v1"), docker("e2e/tags:latest"), "--preserve-digests");
    // Registry to registry: pulls the manifest and blobs, pushes them under a new tag.
    await skopeo.run([
      "copy",
      ...noRetry,
      "--src-tls-verify=false",
      "--dest-tls-verify=false",
      "--preserve-digests",
      docker("e2e/tags:v1"),
      docker("e2e/tags:v2"),
    ]);
    await push(source("small"), docker("e2e/tags:small"), "--preserve-digests");

    const listed = await listTags("e2e/tags");
    assert.equal(listed.Repository, `${host}/e2e/tags`);
    assert.deepEqual([...listed.Tags].sort(), ["latest", "small", "v1", "v2"]);
    const v2 = await inspect(docker("e2e/tags:v2"));
    assert.equal(v2.Digest, multiLayer.manifest.digest, "v2 copied from v1 keeps its digest");
  });

  registryTest("delete by digest removes the manifest and its tag", async () => {
    await push(source("v1"), docker("e2e/delete:keep"), "--preserve-digests");
    await push(source("small"), docker("e2e/delete:doomed"), "--preserve-digests");
    assert.equal((await inspect(docker("e2e/delete:doomed"))).Digest, small.manifest.digest);
    assert.deepEqual([...(await listTags("e2e/delete")).Tags].sort(), ["doomed", "keep"]);

    await skopeo.run(["delete", ...noRetry, noTls, docker(`e2e/delete@${small.manifest.digest}`)]);

    const notFound = /manifest unknown|not found|404/i;
    for (const reference of [`e2e/delete@${small.manifest.digest}`, "e2e/delete:doomed"]) {
      const failure = await skopeo.runExpectingFailure([
        "inspect",
        ...noRetry,
        noTls,
        docker(reference),
      ]);
      assert.match(failure.fatal, notFound, `inspect ${reference} after delete: ${failure.fatal}`);
    }
    assert.deepEqual((await listTags("e2e/delete")).Tags, ["keep"], "tag gone from list-tags");
    // The other image of the repository is untouched.
    assert.equal((await inspect(docker("e2e/delete:keep"))).Digest, multiLayer.manifest.digest);

    for (const reference of ["doomed", small.manifest.digest]) {
      const response = await fetch(`${baseUrl}/v2/e2e/delete/manifests/${reference}`, {
        headers: { Accept: MANIFEST_ACCEPT },
      });
      assert.equal(response.status, 404, `GET manifests/${reference} after delete`);
    }
  });

  registryTest("copy --format v2s2 stores a Docker schema 2 manifest", async () => {
    const digestFile = join(workDir, "v2s2.digest");
    await push(source("v1"), docker("e2e/v2s2:v1"), "--format", "v2s2", "--digestfile", digestFile);
    const pushedDigest = (await readFile(digestFile, "utf8")).trim();

    const raw = await inspectRaw(docker("e2e/v2s2:v1"));
    const manifest = JSON.parse(raw) as {
      schemaVersion: number;
      mediaType: string;
      config: Descriptor;
      layers: Descriptor[];
    };
    assert.equal(manifest.schemaVersion, 2);
    assert.equal(manifest.mediaType, MEDIA_TYPES.dockerManifest);
    assert.equal(manifest.config.mediaType, MEDIA_TYPES.dockerConfig);
    assert.equal(manifest.config.digest, multiLayer.config.digest, "config blob unchanged");
    assert.deepEqual(
      manifest.layers.map((layer) => [layer.mediaType, layer.digest, layer.size]),
      multiLayer.layers.map((layer) => [MEDIA_TYPES.dockerLayerGzip, layer.digest, layer.size]),
    );
    const digest = sha256Digest(Buffer.from(raw, "utf8"));
    assert.equal(digest, pushedDigest, "stored manifest is the one skopeo pushed");
    assert.equal((await inspect(docker("e2e/v2s2:v1"))).Digest, digest);

    const response = await fetch(`${baseUrl}/v2/e2e/v2s2/manifests/v1`, {
      headers: { Accept: MEDIA_TYPES.dockerManifest },
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), MEDIA_TYPES.dockerManifest);
    assert.equal(response.headers.get("docker-content-digest"), digest);
    assert.equal(Buffer.from(await response.arrayBuffer()).toString("utf8"), raw);

    // Pulled into the `dir:` transport, which keeps the manifest and blobs exactly as served.
    const outDir = freshOutputDir();
    await pull(docker("e2e/v2s2:v1"), `dir:${outDir}`);
    assert.equal(await readFile(join(outDir, "manifest.json"), "utf8"), raw);
    for (const blob of [multiLayer.config, ...multiLayer.layers]) {
      const [, hex] = blob.digest.split(":");
      const pulled = await readFile(join(outDir, hex ?? ""));
      assert.equal(sha256Digest(pulled), blob.digest, `blob ${blob.digest} pulled intact`);
    }
  });

  registryTest("HTTP API serves what skopeo relies on, byte for byte", async () => {
    await push(source("v1"), docker("e2e/http:v1"), "--preserve-digests");
    await push(
      source("multiarch"),
      docker("e2e/http:multiarch"),
      "--multi-arch",
      "all",
      "--preserve-digests",
    );
    const repoUrl = `${baseUrl}/v2/e2e/http`;

    const ping = await fetch(`${baseUrl}/v2/`);
    assert.equal(ping.status, 200, "GET /v2/");
    await ping.arrayBuffer();

    const expectManifest = async (
      reference: string,
      accept: string,
      expected: { descriptor: Descriptor; bytes: Buffer },
    ): Promise<void> => {
      const label = `GET ${repoUrl}/manifests/${reference} (Accept: ${accept})`;
      const response = await fetch(`${repoUrl}/manifests/${reference}`, {
        headers: { Accept: accept },
      });
      const body = Buffer.from(await response.arrayBuffer());
      assert.equal(response.status, 200, `${label}: ${body.toString("utf8")}`);
      assert.equal(
        response.headers.get("docker-content-digest"),
        expected.descriptor.digest,
        label,
      );
      assert.equal(response.headers.get("content-type"), expected.descriptor.mediaType, label);
      assert.ok(body.equals(expected.bytes), `${label}: body differs from the pushed bytes`);

      const head = await fetch(`${repoUrl}/manifests/${reference}`, {
        method: "HEAD",
        headers: { Accept: accept },
      });
      assert.equal(head.status, 200, `HEAD ${label}`);
      assert.equal(head.headers.get("docker-content-digest"), expected.descriptor.digest);
      assert.equal(head.headers.get("content-length"), String(expected.bytes.length));
    };

    const image = { descriptor: multiLayer.manifest, bytes: multiLayer.manifestBytes };
    await expectManifest("v1", MEDIA_TYPES.ociManifest, image);
    await expectManifest("v1", MANIFEST_ACCEPT, image);
    await expectManifest(multiLayer.manifest.digest, MANIFEST_ACCEPT, image);
    const index = { descriptor: twoPlatform.index, bytes: twoPlatform.indexBytes };
    await expectManifest("multiarch", MEDIA_TYPES.ociIndex, index);
    await expectManifest("multiarch", MANIFEST_ACCEPT, index);
    for (const child of twoPlatform.images) {
      await expectManifest(child.manifest.digest, MANIFEST_ACCEPT, {
        descriptor: child.manifest,
        bytes: child.manifestBytes,
      });
    }

    const blobs = await collectReachableBlobs(sourceDir, multiLayer.manifest);
    for (const blob of [multiLayer.config, ...multiLayer.layers]) {
      const expected = blobs.get(blob.digest);
      assert.ok(expected);
      const head = await fetch(`${repoUrl}/blobs/${blob.digest}`, { method: "HEAD" });
      assert.equal(head.status, 200, `HEAD blobs/${blob.digest}`);
      assert.equal(head.headers.get("content-length"), String(blob.size));
      const response = await fetch(`${repoUrl}/blobs/${blob.digest}`);
      const body = Buffer.from(await response.arrayBuffer());
      assert.equal(response.status, 200, `GET blobs/${blob.digest}`);
      assert.ok(body.equals(expected), `GET blobs/${blob.digest}: body differs`);
    }

    const tags = await fetch(`${repoUrl}/tags/list`);
    assert.equal(tags.status, 200);
    const tagList = (await tags.json()) as { name: string; tags: string[] };
    assert.equal(tagList.name, "e2e/http");
    assert.deepEqual([...tagList.tags].sort(), ["multiarch", "v1"]);

    const missing = await fetch(`${repoUrl}/manifests/no-such-tag`, {
      headers: { Accept: MANIFEST_ACCEPT },
    });
    assert.equal(missing.status, 404);
    const error = (await missing.json()) as { errors?: { code?: string }[] };
    assert.equal(error.errors?.[0]?.code, "MANIFEST_UNKNOWN");
  });
});
