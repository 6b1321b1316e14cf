// A blob being written to Azure Blob Storage at its final name: blocks staged with
// stageBlock stay invisible (a reader sees the blob as it was, or no blob) until
// commitBlockList, which the verified ingest calls only once the digest matched. A blob
// that fits one block is verified first and sent with one Put Blob. Blocks never committed
// are discarded by the service itself, so there is nothing to abort.
import { randomBytes } from "node:crypto";
import type { BlockBlobClient } from "@azure/storage-blob";
import type { StagedObject } from "./staged-object.ts";

const blobHTTPHeaders = { blobContentType: "application/octet-stream" };

export class AzureStagedObject implements StagedObject {
  /** Block ids are per blob: this token keeps two writers of one blob apart. */
  private readonly token = randomBytes(6).toString("hex");
  private readonly ids: string[] = [];

  constructor(private readonly blob: BlockBlobClient) {}

  async stage(bytes: Buffer, index: number): Promise<void> {
    const id = Buffer.from(`${this.token}${String(index).padStart(8, "0")}`).toString("base64");
    await this.blob.stageBlock(id, bytes, bytes.length);
    this.ids[index - 1] = id;
  }

  async publish(size: number): Promise<void> {
    try {
      await this.blob.commitBlockList(this.ids, { blobHTTPHeaders });
    } catch (error) {
      // Another writer of the same digest committed first, which discards every
      // uncommitted block of the blob, ours too: its bytes are this digest's bytes.
      if (azureErrorCode(error) !== "InvalidBlockList") throw error;
      const current = await this.blob.getProperties().catch(() => undefined);
      if (current?.contentLength !== size) throw error;
    }
  }

  async putWhole(bytes: Buffer): Promise<void> {
    await this.blob.upload(bytes, bytes.length, { blobHTTPHeaders });
  }

  async discard(): Promise<void> {}
}

export function isAzureNotFound(error: unknown): boolean {
  return (error as { statusCode?: number } | undefined)?.statusCode === 404;
}

export function azureErrorCode(error: unknown): string | undefined {
  const e = error as { code?: unknown; details?: { errorCode?: unknown } } | undefined;
  const code = e?.details?.errorCode ?? e?.code;
  return typeof code === "string" ? code : undefined;
}
