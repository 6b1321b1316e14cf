// What a replica's data folder holds, read behind its back: a blob's bytes are a file
// under blobs/ or, at most 64 KiB ingested whole, a row of small-blobs.db. Tests that
// check the disk (garbage collection, races, hostile input) look in both.
import { access, readFile } from "node:fs/promises";
import { join } from "node:path";
import Database from "better-sqlite3";

const tableFile = "small-blobs.db";

function blobFile(dataDir: string, digest: string): string {
  const [algorithm = "", hex = ""] = digest.split(":");
  return join(dataDir, "blobs", algorithm, hex.slice(0, 2), hex);
}

/** Every row of the small-blob table (none when the table does not exist). */
export async function smallBlobRows(dataDir: string): Promise<{ digest: string; bytes: Buffer }[]> {
  const path = join(dataDir, tableFile);
  const exists = await access(path).then(
    () => true,
    () => false,
  );
  if (!exists) return [];
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return db.prepare("SELECT digest, bytes FROM small_blobs").all() as {
      digest: string;
      bytes: Buffer;
    }[];
  } finally {
    db.close();
  }
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
