// Listing and batch deletes for the S3 driver. Pages resume with StartAfter (the last key
// seen) rather than continuation tokens: the same result on S3, and some S3-compatible
// stores cannot make or decode their own tokens (s3rver on OpenSSL 3). For the same
// reason no MaxKeys: a page is truncated only past 1000 keys.
import { DeleteObjectsCommand, ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";

export interface ListedObject {
  key: string;
  size: number;
  modifiedAt: Date;
}

/** Every object under `prefix` in key order, after `startAfter` when given. */
export async function* listObjects(
  client: S3Client,
  bucket: string,
  prefix: string,
  startAfter?: string,
): AsyncGenerator<ListedObject> {
  let after = startAfter;
  for (;;) {
    const page = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, StartAfter: after }),
    );
    let listed = 0;
    for (const object of page.Contents ?? []) {
      if (object.Key === undefined) continue;
      after = object.Key;
      listed += 1;
      yield {
        key: object.Key,
        size: object.Size ?? 0,
        modifiedAt: object.LastModified ?? new Date(0),
      };
    }
    if (!page.IsTruncated || listed === 0) return;
  }
}

/** The "folders" right under `prefix` (each ends with "/"), in key order. */
export async function* listPrefixes(
  client: S3Client,
  bucket: string,
  prefix: string,
): AsyncGenerator<string> {
  let startAfter: string | undefined;
  for (;;) {
    const page = await client.send(
      new ListObjectsV2Command({
        Bucket: bucket,
        Prefix: prefix,
        Delimiter: "/",
        StartAfter: startAfter,
      }),
    );
    let last: string | undefined;
    for (const common of page.CommonPrefixes ?? []) {
      if (!common.Prefix) continue;
      last = common.Prefix;
      yield common.Prefix;
    }
    // Past every key under "<name>/": "<name>0" ('0' follows '/'), which names no folder
    // of fixed-length upload ids.
    if (!page.IsTruncated || last === undefined) return;
    startAfter = `${last.slice(0, -1)}0`;
  }
}

export async function deleteKeys(client: S3Client, bucket: string, keys: string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 1000) {
    const batch = keys.slice(i, i + 1000);
    await client.send(
      new DeleteObjectsCommand({
        Bucket: bucket,
        Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
      }),
    );
  }
}
