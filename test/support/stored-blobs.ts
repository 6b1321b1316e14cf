// What a replica's data folder holds, read behind its back: a blob's bytes are a file
// under blobs/ or, at most 64 KiB ingested whole, a row of the small-blob table, which is
// in metadata.db (a replica on the embedded stores) or in small-blobs.db (a blob store
// opened alone). Tests that check the disk (garbage collection, races, hostile input)
// look in every place.
import { access, readFile } from "node:fs/promises";
import { join } from "node:path";
import Database from "better-sqlite3";

const tableFiles = ["metadata.db", "small-blobs.db"];

function blobFile(dataDir: string, digest: string): string {
  const [algorithm = "", hex = ""] = digest.split(":");
  return join(dataDir, "blobs", algorithm, hex.slice(0, 2), hex);
}

/** Every row of the small-blob tables (none when no file holds one). */
export async function smallBlobRows(dataDir: string): Promise<{ digest: string; bytes: Buffer }[]> {
  const rows: { digest: string; bytes: Buffer }[] = [];
  for (const file of tableFiles) {
    const path = join(dataDir, file);
    const exists = await access(path).then(
      () => true,
      () => false,
    );
    if (!exists) continue;
    const db = new Database(path, { readonly: true, fileMustExist: true });
    try {
      const table = db
        .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'small_blobs'")
        .get();
      if (table) {
        rows.push(
          ...(db.prepare("SELECT digest, bytes FROM small_blobs").all() as {
            digest: string;
            bytes: Buffer;
          }[]),
        );
      }
    } finally {
      db.close();
    }
  }
  return rows;
}

/** The blob's bytes as the data folder holds them, or undefined when it holds none. */
export async function storedBlob(dataDir: string, digest: string): Promise<Buffer | undefined> {
  const file = await readFile(blobFile(dataDir, digest)).catch(() => undefined);
  if (file) return file;
  return (await smallBlobRows(dataDir)).find((row) => row.digest === digest)?.bytes;
}

/** Whether the data folder holds the blob's bytes (a file or a row). */
export async function isStored(dataDir: string, digest: string): Promise<boolean> {
  return (await storedBlob(dataDir, digest)) !== undefined;
}
