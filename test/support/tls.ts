// TLS helpers for end-to-end tests: a throwaway self-signed certificate for 127.0.0.1
// (openssl), and a GET that trusts exactly that certificate.
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { get } from "node:https";
import { join } from "node:path";
import { promisify } from "node:util";

export async function selfSignedCertificate(dir: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  await promisify(execFile)("openssl", [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "1",
    "-subj",
    "/CN=127.0.0.1",
    "-addext",
    "subjectAltName=IP:127.0.0.1",
    "-keyout",
    key,
    "-out",
    cert,
  ]);
  return { cert, key };
}

/** GET over HTTPS trusting only `certFile`; resolves the status and the headers. */
export async function httpsGetTrusting(
  url: string,
  certFile: string,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  const ca = await readFile(certFile);
  return new Promise((resolve, reject) => {
    get(url, { ca }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, headers: res.headers });
    }).on("error", reject);
  });
}
