// A blob being written to S3 at its final key: a multipart upload whose parts stay
// invisible until CompleteMultipartUpload, which the verified ingest calls only once the
// digest matched (a blob that fits one part is verified first and sent with one PUT). An
// upload that never completes is aborted; a crash leaves it to the bucket's lifecycle rule
// for incomplete multipart uploads.
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import type { StagedObject } from "./staged-object.ts";

const contentType = "application/octet-stream";

export class S3StagedObject implements StagedObject {
  private uploadId: Promise<string> | undefined;
  private readonly etags: string[] = [];

  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    private readonly key: string,
  ) {}

  async stage(bytes: Buffer, index: number): Promise<void> {
    const uploadId = await this.started();
    const part = await this.client.send(
      new UploadPartCommand({
        Bucket: this.bucket,
        Key: this.key,
        UploadId: uploadId,
        PartNumber: index,
        Body: bytes,
        ContentLength: bytes.length,
      }),
    );
    if (!part.ETag) throw new Error(`S3 returned no ETag for part ${index} of ${this.key}`);
    this.etags[index - 1] = part.ETag;
  }

  async publish(): Promise<void> {
    const uploadId = await this.started();
    await this.client.send(
      new CompleteMultipartUploadCommand({
        Bucket: this.bucket,
        Key: this.key,
        UploadId: uploadId,
        MultipartUpload: {
          Parts: this.etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })),
        },
      }),
    );
  }

  async putWhole(bytes: Buffer): Promise<void> {
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: this.key,
        Body: bytes,
        ContentLength: bytes.length,
        ContentType: contentType,
      }),
    );
  }

  async discard(): Promise<void> {
    if (!this.uploadId) return;
    const uploadId = await this.uploadId;
    await this.client.send(
      new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.key, UploadId: uploadId }),
    );
  }

  private started(): Promise<string> {
    this.uploadId ??= this.client
      .send(
        new CreateMultipartUploadCommand({
          Bucket: this.bucket,
          Key: this.key,
          ContentType: contentType,
        }),
      )
      .then((created) => {
        if (!created.UploadId) throw new Error(`S3 returned no upload id for ${this.key}`);
        return created.UploadId;
      });
    return this.uploadId;
  }
}

/** True for S3's "no such key" answers (GET says NoSuchKey, HEAD only 404). */
export function isS3NotFound(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } } | undefined;
  return e?.name === "NoSuchKey" || e?.name === "NotFound" || e?.$metadata?.httpStatusCode === 404;
}
