// Checks a name and secret (Basic credentials) against the configured users and tokens.
// Users and tokens are separate namespaces: a token may carry a user's name without
// replacing the user; such a name is checked against the user's hash, then the token's.
// scrypt takes tens of milliseconds by design, so a successful check is remembered for a
// minute under a hash of the credentials (never the secret itself); failures are not.
import { createHash } from "node:crypto";
import type { Config } from "../config/config-schema.ts";
import { verifySecret } from "./password-hash.ts";
import type { Principal } from "./permissions.ts";

interface Account {
  principal: Principal;
  secretHash: string;
}

const rememberMs = 60_000;
const maxRemembered = 10_000;

export class Credentials {
  private readonly users = new Map<string, Account>();
  private readonly tokens = new Map<string, Account>();
  private readonly remembered = new Map<string, { principal: Principal; until: number }>();

  constructor(auth: Config["auth"]) {
    for (const user of auth.users) {
      this.users.set(user.name, {
        principal: {
          kind: "user",
          name: user.name,
          id: user.name,
          admin: user.admin,
          grants: user.permissions,
        },
        secretHash: user.passwordHash,
      });
    }
    for (const token of auth.tokens) {
      this.tokens.set(token.name, {
        principal: {
          kind: "token",
          name: token.name,
          id: `${tokenIdPrefix}${token.name}`,
          admin: false,
          grants: token.permissions,
        },
        secretHash: token.secretHash,
      });
    }
  }

  /** Whether any user or token exists (then every request needs credentials). */
  get configured(): boolean {
    return this.users.size > 0 || this.tokens.size > 0;
  }

  /** The principal of an id (a JWT subject). */
  principal(id: string): Principal | undefined {
    if (id.startsWith(tokenIdPrefix))
      return this.tokens.get(id.slice(tokenIdPrefix.length))?.principal;
    return this.users.get(id)?.principal;
  }

  async verify(name: string, secret: string): Promise<Principal | undefined> {
    const key = createHash("sha256").update(name).update("\0").update(secret).digest("hex");
    const cached = this.remembered.get(key);
    if (cached && cached.until > Date.now()) return cached.principal;
    for (const account of [this.users.get(name), this.tokens.get(name)]) {
      if (!account || !(await verifySecret(secret, account.secretHash))) continue;
      if (this.remembered.size >= maxRemembered) this.remembered.clear();
      this.remembered.set(key, { principal: account.principal, until: Date.now() + rememberMs });
      return account.principal;
    }
    return undefined;
  }
}

/** Principal names cannot hold ":" (config schema), so this prefix cannot be a user's. */
const tokenIdPrefix = "token:";

/** Parses `Authorization: Basic <base64 name:secret>`. */
export function parseBasic(
  header: string | undefined,
): { name: string; secret: string } | undefined {
  if (!header?.startsWith("Basic ")) return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon <= 0) return undefined;
  return { name: decoded.slice(0, colon), secret: decoded.slice(colon + 1) };
}
