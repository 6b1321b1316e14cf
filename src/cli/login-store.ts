// Where `meridian login` keeps credentials: like Docker's config.json, a file readable by
// its owner only (mode 0600), written atomically, holding base64 `name:password` per
// registry endpoint and the endpoint logged in to last. $MERIDIAN_CONFIG_DIR, or
// ~/.meridian.
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";

interface StoredLogins {
  auths: Record<string, { auth: string }>;
  current?: string;
}

export function loginFile(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.MERIDIAN_CONFIG_DIR ?? join(homedir(), ".meridian"), "config.json");
}

async function read(file: string): Promise<StoredLogins> {
  try {
    const parsed = JSON.parse(await readFile(file, "utf8")) as Partial<StoredLogins>;
    return { auths: parsed.auths ?? {}, current: parsed.current };
  } catch {
    return { auths: {} };
  }
}

export async function saveLogin(endpoint: string, name: string, password: string): Promise<void> {
  const file = loginFile();
  const stored = await read(file);
  stored.auths[endpoint] = { auth: Buffer.from(`${name}:${password}`).toString("base64") };
  stored.current = endpoint;
  await mkdir(join(file, ".."), { recursive: true, mode: 0o700 });
  await writeFile(`${file}.tmp`, `${JSON.stringify(stored, null, 2)}\n`, { mode: 0o600 });
  await rename(`${file}.tmp`, file);
}

/** The endpoint logged in to last, if any. */
export async function currentLogin(): Promise<string | undefined> {
  return (await read(loginFile())).current;
}

/** The stored `Authorization` header for an endpoint, if logged in there. */
export async function storedAuthorization(endpoint: string): Promise<string | undefined> {
  const auth = (await read(loginFile())).auths[endpoint]?.auth;
  return auth ? `Basic ${auth}` : undefined;
}
