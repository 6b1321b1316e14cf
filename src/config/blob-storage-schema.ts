// The `storage.blobs` section: which driver holds the blob bytes of this replica (the
// data folder by default, or a bucket or container shared by the nodes of a region) and
// where. Credentials come from the environment (see open-blob-store.ts); the config may
// carry them too, for a file kept as secret as the keys themselves.
import { z } from "zod";

const prefix = z
  .string()
  .regex(/^(?:[A-Za-z0-9._-]+\/)*[A-Za-z0-9._-]*$/, "a folder such as `meridian/` or `eu/one/`")
  .refine((value) => !value.split("/").some((part) => /^\.+$/.test(part)), "no `.` or `..` parts")
  .default("");

export const blobStorageSchema = z
  .discriminatedUnion("driver", [
    z.object({ driver: z.literal("filesystem") }).strict(),
    z
      .object({
        driver: z.literal("s3"),
        bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, "an S3 bucket name"),
        region: z.string().min(1).default("us-east-1"),
        /** An S3-compatible endpoint (MinIO, Ceph, R2...); default AWS. */
        endpoint: z.string().url().optional(),
        /** Bucket in the path rather than the host name: most S3-compatible stores need it. */
        forcePathStyle: z.boolean().default(false),
        prefix,
        /** Default: the AWS chain (env AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, files, role). */
        accessKeyId: z.string().min(1).optional(),
        secretAccessKey: z.string().min(1).optional(),
        /** Blob GETs answer 307 to a short-lived signed URL of the object store. */
        redirect: z.boolean().default(false),
        redirectTtlSeconds: z.number().int().min(10).max(3600).default(300),
      })
      .strict(),
    z
      .object({
        driver: z.literal("azure"),
        container: z
          .string()
          .regex(/^[a-z0-9](?:[a-z0-9]|-(?!-)){1,61}[a-z0-9]$/, "an Azure container name"),
        /** https://<account>.blob.core.windows.net; default: from the connection string. */
        accountUrl: z.string().url().optional(),
        prefix,
        /** Default: env AZURE_STORAGE_CONNECTION_STRING. */
        connectionString: z.string().min(1).optional(),
        /** With accountUrl; default: env AZURE_STORAGE_KEY. */
        accountKey: z.string().min(1).optional(),
        /** Blob GETs answer 307 to a short-lived SAS URL (needs the account key) of the object store. */
        redirect: z.boolean().default(false),
        redirectTtlSeconds: z.number().int().min(10).max(3600).default(300),
      })
      .strict(),
  ])
  .superRefine((value, ctx) => {
    if (value.driver !== "s3") return;
    if ((value.accessKeyId === undefined) !== (value.secretAccessKey === undefined)) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ["secretAccessKey"],
        message: "accessKeyId and secretAccessKey go together",
      });
    }
  });

export type BlobStorageConfig = z.infer<typeof blobStorageSchema>;
export type BlobStorageInput = z.input<typeof blobStorageSchema>;
