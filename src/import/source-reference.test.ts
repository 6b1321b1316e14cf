import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OciError } from "../oci/oci-error.ts";
import {
  isLoopbackHost,
  parsePlatform,
  parseSourceReference,
  parseTargetReference,
} from "./source-reference.ts";

const digest = `sha256:${"a".repeat(64)}`;

describe("import references", () => {
  it("reads a registry, repository and tag or digest", () => {
    assert.deepEqual(parseSourceReference("127.0.0.1:5000/team/app:v1"), {
      registry: "127.0.0.1:5000",
      repository: "team/app",
      reference: { kind: "tag", tag: "v1" },
    });
    assert.deepEqual(parseSourceReference(`localhost/app@${digest}`), {
      registry: "localhost",
      repository: "app",
      reference: { kind: "digest", digest },
    });
    assert.equal(parseSourceReference("ghcr.io/org/tool:1.2").registry, "ghcr.io");
  });

  it("reads Docker Hub references as Docker does", () => {
    const hub = parseSourceReference("alpine:3");
    assert.equal(hub.registry, "registry-1.docker.io");
    assert.equal(hub.repository, "library/alpine");
    assert.equal(parseSourceReference("docker.io/bitnami/redis:7").repository, "bitnami/redis");
  });

  it("refuses references without a tag or digest, or with a bad name", () => {
    for (const bad of ["127.0.0.1:5000/app", "", "127.0.0.1:5000/App:v1", "h.io/a:b/c"]) {
      assert.throws(() => parseSourceReference(bad), OciError, bad);
    }
  });

  it("targets the source's name and tag by default", () => {
    const source = parseSourceReference("h.io/team/app:v2");
    assert.deepEqual(parseTargetReference(undefined, source), {
      repository: "team/app",
      tag: "v2",
    });
    assert.deepEqual(parseTargetReference("mirror/app:stable", source), {
      repository: "mirror/app",
      tag: "stable",
    });
    assert.deepEqual(parseTargetReference("mirror/app", source), { repository: "mirror/app" });
  });

  it("reads platforms and loopback hosts", () => {
    assert.deepEqual(parsePlatform("linux/arm64/v8"), {
      os: "linux",
      architecture: "arm64",
      variant: "v8",
    });
    assert.throws(() => parsePlatform("linux"), OciError);
    assert.ok(
      isLoopbackHost("127.3.2.1") && isLoopbackHost("[::1]") && isLoopbackHost("localhost"),
    );
    assert.ok(!isLoopbackHost("10.0.0.1") && !isLoopbackHost("example.com"));
  });
});

describe("the address guard", () => {
  it("refuses link-local and metadata addresses, keeps loopback and private ones", async () => {
    const { isRefused, refuseMetadataAddresses } = await import("./address-guard.ts");
    for (const address of [
      "169.254.169.254",
      "fe80::1",
      "fd00:ec2::254",
      "::ffff:169.254.169.254",
    ]) {
      assert.ok(isRefused(address), address);
    }
    for (const address of ["127.0.0.1", "10.1.2.3", "192.168.0.1", "::1", "fd00::1"]) {
      assert.ok(!isRefused(address), address);
    }
    await assert.rejects(refuseMetadataAddresses("169.254.169.254"), /cloud metadata/);
    await assert.rejects(refuseMetadataAddresses("[fe80::1]"), /link-local/);
    await refuseMetadataAddresses("127.0.0.1");
  });
});
