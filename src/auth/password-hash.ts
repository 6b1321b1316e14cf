// Slow, salted hashes of passwords and token secrets (scrypt, from Node's crypto), so that
// a stolen configuration does not reveal them:
//
//   scrypt$<N>$<r>$<p>$<salt, base64>$<hash, base64>
import { randomBytes, scrypt as scryptCallback, timingSafeEqual } from "node:crypto";
import { promisify } from "node:util";

const scrypt = promisify(scryptCallback) as (
  password: string,
  salt: Buffer,
  keylen: number,
  options: { N: number; r: number; p: number; maxmem: number },
) => Promise<Buffer>;

const defaults = { N: 16384, r: 8, p: 1 };
const keyBytes = 32;

export async function hashSecret(secret: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await scrypt(secret, salt, keyBytes, { ...defaults, maxmem: 64 * 1024 * 1024 });
  return [
    "scrypt",
    defaults.N,
    defaults.r,
    defaults.p,
    salt.toString("base64"),
    hash.toString("base64"),
  ].join("$");
}

export function isSecretHash(value: string): boolean {
  return /^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/.test(value);
}

/** Whether `secret` matches `encoded`; compares in constant time. False for a malformed hash. */
export async function verifySecret(secret: string, encoded: string): Promise<boolean> {
  if (!isSecretHash(encoded)) return false;
  const [, n, r, p, salt, hash] = encoded.split("$");
  const expected = Buffer.from(hash ?? "", "base64");
  const actual = await scrypt(secret, Buffer.from(salt ?? "", "base64"), expected.length, {
    N: Number(n),
    r: Number(r),
    p: Number(p),
    maxmem: 256 * 1024 * 1024,
  });
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}
