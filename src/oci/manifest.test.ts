import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { digestOf } from "./digest.ts";
import { parseManifest } from "./manifest.ts";
import { mediaTypes } from "./media-types.ts";
import { OciError } from "./oci-error.ts";

const d = (s: string) => digestOf(Buffer.from(s));
const desc = (s: string, mediaType = "application/vnd.oci.image.layer.v1.tar+gzip") => ({
  mediaType,
  digest: d(s),
  size: s.length,
});
const json = (value: unknown) => Buffer.from(JSON.stringify(value));
const invalid = (e: unknown) => e instanceof OciError && e.code === "MANIFEST_INVALID";

describe("manifest parsing", () => {
  it("lists the config and layers of an image manifest, skipping foreign layers", () => {
    const parsed = parseManifest(
      json({
        schemaVersion: 2,
        mediaType: mediaTypes.ociManifest,
        config: desc("cfg", "application/vnd.oci.image.config.v1+json"),
        layers: [desc("l1"), { ...desc("foreign"), urls: ["https://example.invalid/l"] }],
        subject: desc("subject", mediaTypes.ociManifest),
      }),
      mediaTypes.ociManifest,
    );
    assert.deepEqual(parsed.blobs, [d("cfg"), d("l1")]);
    assert.equal(parsed.subject?.digest, d("subject"));
    assert.equal(parsed.artifactType, "application/vnd.oci.image.config.v1+json");
  });

  it("lists the children of an index and a Docker manifest list", () => {
    for (const mediaType of [mediaTypes.ociIndex, mediaTypes.dockerManifestList]) {
      const parsed = parseManifest(
        json({ schemaVersion: 2, mediaType, manifests: [desc("a", mediaTypes.ociManifest)] }),
        mediaType,
      );
      assert.deepEqual(parsed.manifests, [d("a")]);
      assert.deepEqual(parsed.blobs, []);
    }
  });

  it("takes the media type from Content-Type when the body has none", () => {
    const parsed = parseManifest(
      json({ schemaVersion: 2, config: desc("c"), layers: [] }),
      `${mediaTypes.dockerManifest}; charset=utf-8`,
    );
    assert.equal(parsed.mediaType, mediaTypes.dockerManifest);
  });

  it("rejects what is not a manifest", () => {
    const cases: [Buffer, string | undefined][] = [
      [Buffer.from("{not json"), mediaTypes.ociManifest],
      [json([1, 2]), mediaTypes.ociManifest],
      [
        json({ schemaVersion: 2, mediaType: "text/plain", config: desc("c"), layers: [] }),
        undefined,
      ],
      [
        json({
          schemaVersion: 1,
          mediaType: mediaTypes.ociManifest,
          config: desc("c"),
          layers: [],
        }),
        undefined,
      ],
      [
        json({
          schemaVersion: 2,
          mediaType: mediaTypes.ociManifest,
          config: desc("c"),
          layers: [],
        }),
        mediaTypes.ociIndex,
      ],
      [json({ schemaVersion: 2, mediaType: mediaTypes.ociManifest, layers: [] }), undefined],
      [
        json({
          schemaVersion: 2,
          mediaType: mediaTypes.ociManifest,
          config: { ...desc("c"), digest: "sha256:x" },
          layers: [],
        }),
        undefined,
      ],
      [
        json({
          schemaVersion: 2,
          mediaType: mediaTypes.ociManifest,
          config: { ...desc("c"), size: -1 },
          layers: [],
        }),
        undefined,
      ],
      [json({ schemaVersion: 2, mediaType: mediaTypes.ociIndex, manifests: {} }), undefined],
      [json({ schemaVersion: 2 }), undefined],
    ];
    for (const [bytes, contentType] of cases) {
      assert.throws(() => parseManifest(bytes, contentType), invalid, bytes.toString());
    }
  });
});
