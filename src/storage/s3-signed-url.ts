// Presigned GET URLs for S3 objects, made with the client's own SigV4 signer (the one it
// signs every request with), so that blob reads may redirect to the bucket without
// another package. The URL names the object as the client would address it: path style
// (http://endpoint/bucket/key) or virtual-hosted (https://bucket.s3.region.amazonaws.com/key).
import type { S3Client } from "@aws-sdk/client-s3";

export interface S3Addressing {
  bucket: string;
  region: string;
  endpoint?: string | undefined;
  forcePathStyle: boolean;
}

interface SignableRequest {
  method: string;
  protocol: string;
  hostname: string;
  port?: number | undefined;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
}

interface Presigner {
  presign(
    request: SignableRequest,
    options: { expiresIn: number },
  ): Promise<{ path: string; query?: Record<string, string | string[] | null> }>;
}

export async function presignedGetUrl(
  client: S3Client,
  addressing: S3Addressing,
  key: string,
  expiresInSeconds: number,
): Promise<string> {
  const base = new URL(addressing.endpoint ?? `https://s3.${addressing.region}.amazonaws.com`);
  const pathStyle = addressing.forcePathStyle;
  const hostname = pathStyle ? base.hostname : `${addressing.bucket}.${base.hostname}`;
  const host = base.port ? `${hostname}:${base.port}` : hostname;
  const root = base.pathname.replace(/\/$/, "");
  const path = `${root}${pathStyle ? `/${addressing.bucket}` : ""}/${key.split("/").map(encodeURIComponent).join("/")}`;
  const signer = (await client.config.signer()) as unknown as Presigner;
  const signed = await signer.presign(
    {
      method: "GET",
      protocol: base.protocol,
      hostname,
      port: base.port ? Number(base.port) : undefined,
      path,
      query: {},
      headers: { host },
    },
    { expiresIn: expiresInSeconds },
  );
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(signed.query ?? {})) {
    if (typeof value === "string") query.append(name, value);
    else if (Array.isArray(value)) for (const item of value) query.append(name, item);
  }
  return `${base.protocol}//${host}${signed.path}?${query.toString()}`;
}
