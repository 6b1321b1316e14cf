// The small-blob table kept in the embedded metadata store's file, as a replica on the
// embedded stores runs it: rows land in metadata.db and nowhere else, a row and its link
// are both in metadata.db once the link is acknowledged (what a killed process leaves;
// that a power loss keeps them too follows from the WAL's order, see small-blob-table.ts), and a data folder written before
// the table moved has its rows adopted and its old file removed.
import assert from "node:assert/strict";
import { access, copyFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { it } from "node:test";
import Database from "better-sqlite3";
import { withTempFolder } from "../../test/support/temp-folder.ts";
import { SqliteMetadataStore } from "../metadata/sqlite-metadata-store.ts";
import { digestOf } from "../oci/digest.ts";
import { FsBlobStore } from "./fs-blob-store.ts";
import { smallBlobFile } from "./small-blob-table.ts";

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

async function openPair(root: string) {
  const metadata = new SqliteMetadataStore({ path: join(root, "metadata.db") });
  const blobs = await FsBlobStore.open({ root, metadataDatabase: metadata.database() });
  return { metadata, blobs };
}

function rowsOf(path: string): string[] {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return (
      db.prepare("SELECT digest FROM small_blobs ORDER BY digest").all() as { digest: string }[]
    ).map((row) => row.digest);
  } finally {
    db.close();
  }
}

it("keeps small blobs as rows of metadata.db, with no file of their own", () =>
  withTempFolder("meridian-small-in-metadata-", async (root) => {
    const { metadata, blobs } = await openPair(root);
    const bytes = Buffer.from("a config blob");
    const digest = digestOf(bytes);
    assert.deepEqual(await blobs.ingest(digest, Readable.from([bytes])), { size: bytes.length });
    assert.ok((await buffer(await blobs.read(digest))).equals(bytes));
    assert.deepEqual(rowsOf(join(root, "metadata.db")), [digest]);
    assert.equal(await exists(join(root, smallBlobFile)), false);
    assert.deepEqual(
      (await readdir(root)).filter((name) => name.startsWith("small-blobs")),
      [],
    );
    assert.equal(await blobs.delete(digest), true);
    assert.equal(await blobs.stat(digest), undefined);
    await metadata.close();
  }));

it("has the row and its link in metadata.db once the link is acknowledged, as a killed process leaves them", () =>
  withTempFolder("meridian-small-in-metadata-", async (root) => {
    const { metadata, blobs } = await openPair(root);
    const bytes = Buffer.from("a small layer");
    const digest = digestOf(bytes);
    await blobs.ingest(digest, Readable.from([bytes]));
    await metadata.linkBlob({
      repository: "team/app",
      digest,
      size: bytes.length,
      stamp: "1700000000001.000000.test",
    });
    // What the disk holds at this moment, taken while the store is still open.
    const copy = join(root, "copy");
    for (const suffix of ["", "-wal"]) {
      await copyFile(join(root, `metadata.db${suffix}`), join(root, `copy.db${suffix}`));
    }
    await metadata.close();
    const reopened = new SqliteMetadataStore({ path: `${copy}.db` });
    const again = await FsBlobStore.open({
      root: join(root, "copy-blobs"),
      metadataDatabase: reopened.database(),
    });
    assert.ok((await buffer(await again.read(digest))).equals(bytes));
    assert.equal((await reopened.getBlobLink("team/app", digest))?.size, bytes.length);
    await reopened.close();
  }));

it("adopts the rows of a small-blobs.db written before, and removes that file", () =>
  withTempFolder("meridian-small-in-metadata-", async (root) => {
    const before = await FsBlobStore.open({ root });
    const blobsBefore = ["one", "two", "three"].map((text) => Buffer.from(`blob ${text}`));
    for (const bytes of blobsBefore) await before.ingest(digestOf(bytes), Readable.from([bytes]));
    assert.equal(await exists(join(root, smallBlobFile)), true);

    const { metadata, blobs } = await openPair(root);
    for (const bytes of blobsBefore) {
      assert.ok((await buffer(await blobs.read(digestOf(bytes)))).equals(bytes));
    }
    assert.deepEqual(
      (await readdir(root)).filter((name) => name.startsWith("small-blobs")),
      [],
    );
    assert.deepEqual(rowsOf(join(root, "metadata.db")), blobsBefore.map((b) => digestOf(b)).sort());
    await metadata.close();

    // A second start finds nothing to adopt and keeps the rows.
    const second = await openPair(root);
    assert.equal((await second.blobs.listBlobs(undefined, 10)).length, 3);
    await second.metadata.close();
  }));
