import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { digestOf } from "../oci/digest.ts";
import { formatStamp } from "../registry/hybrid-clock.ts";
import { feedProtocol, PeerProtocolError, parseFeedPage, toChange, toWire } from "./wire-format.ts";

const stamp = formatStamp(1_800_000_000_000, 3, "westus");
const digest = digestOf(Buffer.from("x"));

/** What a follower receives: the record after a trip through JSON. */
const overTheWire = (value: unknown) => parseFeedPage(JSON.parse(JSON.stringify(value)));

describe("wire format", () => {
  it("carries every record kind through JSON to the same change", () => {
    const bytes = Buffer.from('{"schemaVersion":2}');
    const small = Buffer.from("x");
    const page = overTheWire({
      head: 7,
      log: "log-1",
      records: [
        toWire({ seq: 1, stamp, kind: "blob-link", repository: "a/b", digest }, undefined, small),
        toWire({ seq: 2, stamp, kind: "blob-unlink", repository: "a/b", digest }),
        toWire(
          { seq: 3, stamp, kind: "manifest-put", repository: "a/b", digest },
          { mediaType: "application/vnd.oci.image.manifest.v1+json", bytes },
        ),
        toWire({ seq: 4, stamp, kind: "manifest-delete", repository: "a/b", digest }),
        toWire({ seq: 5, stamp, kind: "tag-put", repository: "a/b", digest, tag: "v1" }),
        toWire({ seq: 6, stamp, kind: "tag-delete", repository: "a/b", tag: "v1" }),
      ],
    });
    assert.equal(page.head, 7);
    assert.deepEqual(
      Buffer.from(page.records[0]?.blob ?? "", "base64"),
      small,
      "a small blob inline",
    );
    assert.equal(page.log, "log-1");
    const changes = page.records.map(toChange);
    assert.deepEqual(
      changes.map((c) => c?.kind),
      ["blob-link", "blob-unlink", "manifest-put", "manifest-delete", "tag-put", "tag-delete"],
    );
    const put = changes[2];
    assert.ok(put?.kind === "manifest-put");
    assert.deepEqual(put.bytes, bytes);
    assert.deepEqual(changes[4], { kind: "tag-put", repository: "a/b", tag: "v1", digest, stamp });
  });

  it("carries the client request of a push or delete, and refuses a malformed one", () => {
    const request = { id: "r-1", host: "registry.example", method: "PUT", useragent: "skopeo" };
    const [put, deleted] = overTheWire({
      head: 2,
      records: [
        toWire({ seq: 1, stamp, kind: "tag-put", repository: "a", digest, tag: "v1", request }),
        toWire({ seq: 2, stamp, kind: "manifest-delete", repository: "a", digest, request }),
      ],
    }).records.map(toChange);
    assert.deepEqual(put, { kind: "tag-put", repository: "a", tag: "v1", digest, stamp, request });
    assert.deepEqual(deleted, { kind: "manifest-delete", repository: "a", digest, stamp, request });
    const record = { seq: 1, stamp, kind: "tag-put", repository: "a", digest, tag: "v1" };
    for (const bad of ["PUT", { ...request, host: 5 }, { ...request, id: "x".repeat(257) }]) {
      assert.throws(
        () => overTheWire({ head: 1, records: [{ ...record, request: bad }] }),
        PeerProtocolError,
      );
    }
  });

  it("reads pages of its protocol or older, and refuses a newer one saying to upgrade", () => {
    assert.equal(overTheWire({ head: 0, records: [] }).protocol, 1, "no field: version 1");
    assert.equal(overTheWire({ protocol: feedProtocol, head: 0, records: [] }).protocol, 1);
    assert.throws(
      () => overTheWire({ protocol: feedProtocol + 1, head: 0, records: [] }),
      /writes feed protocol 2 and this replica reads up to 1: upgrade this replica/,
    );
    assert.throws(() => overTheWire({ protocol: "2", head: 0, records: [] }), PeerProtocolError);
  });

  it("skips a manifest put whose manifest the peer no longer holds", () => {
    const page = overTheWire({
      head: 1,
      records: [toWire({ seq: 1, stamp, kind: "manifest-put", repository: "a", digest })],
    });
    assert.equal(toChange(page.records[0] as never), undefined);
  });

  it("refuses malformed pages and records", () => {
    const record = { seq: 1, stamp, kind: "blob-link", repository: "a", digest };
    const bad: [string, unknown][] = [
      ["no records", { head: 1 }],
      ["negative head", { head: -1, records: [] }],
      ["a stamp that is not a stamp", { head: 1, records: [{ ...record, stamp: "yesterday" }] }],
      [
        "a counter wider than the format",
        { head: 1, records: [{ ...record, stamp: `${stamp.slice(0, 14)}1000000.westus` }] },
      ],
      ["a non-string digest", { head: 1, records: [{ ...record, digest: 5 }] }],
    ];
    for (const [what, body] of bad) {
      assert.throws(() => overTheWire(body), PeerProtocolError, what);
    }
    const changes: [string, Record<string, unknown>][] = [
      ["an unknown kind", { ...record, kind: "repository-drop" }],
      ["a bad repository", { ...record, repository: "../etc" }],
      ["a bad digest", { ...record, digest: "sha256:nothex" }],
      ["a tag put without a tag", { ...record, kind: "tag-put" }],
      ["a tag that is not a tag", { ...record, kind: "tag-delete", tag: "-bad" }],
    ];
    for (const [what, value] of changes) {
      const [parsed] = overTheWire({ head: 1, records: [value] }).records;
      assert.throws(() => toChange(parsed as never), PeerProtocolError, what);
    }
  });

  it("carries control records by kind and name, and refuses a malformed one", () => {
    const control = { kind: "user", name: "alice" };
    const [put, deleted, stale] = overTheWire({
      head: 3,
      records: [
        toWire(
          {
            seq: 1,
            stamp,
            kind: "control-put",
            repository: "_control:user",
            tag: "alice",
            control,
          },
          undefined,
          undefined,
          '{"admin":true}',
        ),
        toWire({
          seq: 2,
          stamp,
          kind: "control-delete",
          repository: "_control:user",
          tag: "alice",
        }),
        toWire({ seq: 3, stamp, kind: "control-put", repository: "_control:user", tag: "alice" }),
      ],
    }).records.map(toChange);
    assert.deepEqual(put, {
      kind: "control-put",
      controlKind: "user",
      name: "alice",
      value: '{"admin":true}',
      stamp,
    });
    assert.equal(deleted?.kind, "control-delete");
    assert.equal(stale, undefined, "a put written again since carries no value and is skipped");
    for (const bad of [
      { repository: "_control:User", tag: "alice", value: "{}" },
      { repository: "_control:user", tag: "a/b", value: "{}" },
      { repository: "_control:user", tag: "alice", value: "{not json" },
    ]) {
      const [record] = overTheWire({
        head: 1,
        records: [{ seq: 1, stamp, kind: "control-put", ...bad }],
      }).records;
      assert.throws(() => toChange(record as never), PeerProtocolError, JSON.stringify(bad));
    }
  });
});
