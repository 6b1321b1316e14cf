// Checks a name and secret (Basic credentials) against the configured users and tokens.
// Users and tokens are separate namespaces: a token may carry a user's name without
// replacing the user; such a name is checked against the user's hash, then the token's.
//
// scrypt takes tens of milliseconds by design and runs on the thread pool blob I/O uses,
// so a check runs only when it must: a success is remembered for a minute and a failure
// for a short while (both under a hash of name and secret, never the secret itself), each
// client's failures are throttled (LoginThrottle), and the checks that do run pass through
// one small gate (VerificationGate).
import { createHash } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import { type Config, tokenEntry, userEntry } from "../config/config-schema.ts";
import type { ControlRecord } from "../metadata/metadata-store.ts";
import { LoginThrottle } from "./login-throttle.ts";
import { verifySecret } from "./password-hash.ts";
import type { Principal } from "./permissions.ts";
import { scryptGate, type VerificationGate } from "./verification-gate.ts";

interface Account {
  principal: Principal;
  secretHash: string;
}

export interface CredentialsOptions {
  /** Milliseconds since the epoch (tests pass their own clock). */
  now?: () => number;
  /** Default: 10 failures at once, then one a second, per client. */
  throttle?: LoginThrottle;
  /** Default: the process's scrypt gate. */
  gate?: VerificationGate;
  /** Default: scrypt (tests count the calls). */
  verifySecret?: (secret: string, encoded: string) => Promise<boolean>;
  /** Milliseconds a throttled attempt waits before its 429; default 1000 (tests: 0). */
  throttledDelayMs?: number;
}

const rememberMs = 60_000;
/** A wrong password may become right only with a new configuration, i.e. a restart. */
const rememberFailureMs = 30_000;
const maxRemembered = 10_000;

export class Credentials {
  private readonly users = new Map<string, Account>();
  private readonly tokens = new Map<string, Account>();
  private readonly remembered = new Map<string, { principal: Principal; until: number }>();
  private readonly failed = new Map<string, number>();
  private readonly inFlight = new Map<string, Promise<Principal | undefined>>();
  private readonly now: () => number;
  private readonly throttle: LoginThrottle;
  private readonly gate: VerificationGate;
  private readonly check: (secret: string, encoded: string) => Promise<boolean>;
  private readonly throttledDelayMs: number;
  private readonly base: Config["auth"];

  constructor(auth: Config["auth"], options: CredentialsOptions = {}) {
    this.now = options.now ?? Date.now;
    this.throttle =
      options.throttle ?? new LoginThrottle({ burst: 10, refillPerSecond: 1, now: this.now });
    this.gate = options.gate ?? scryptGate;
    this.check = options.verifySecret ?? verifySecret;
    this.throttledDelayMs = options.throttledDelayMs ?? 1000;
    this.base = auth;
    this.useAccounts(auth.users, auth.tokens);
  }

  /**
   * Replaces the accounts with the configuration file's, overlaid by the control records:
   * a record (or its deletion) wins over the file's entry of the same name. What was
   * remembered of earlier checks goes, so that a changed password or a deleted account
   * takes effect at once.
   */
  useAccounts(users: readonly UserEntry[], tokens: readonly TokenEntry[]): void {
    this.users.clear();
    this.tokens.clear();
    this.remembered.clear();
    this.failed.clear();
    for (const user of users) {
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
    for (const token of tokens) {
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

  /** The configuration file's accounts overlaid by the control records' registers. */
  useRecords(users: readonly ControlRecord[], tokens: readonly ControlRecord[]): void {
    this.useAccounts(
      overlay(this.base.users, users, (name, value) => userEntry.parse({ name, ...value })),
      overlay(this.base.tokens, tokens, (name, value) => tokenEntry.parse({ name, ...value })),
    );
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

  /**
   * A short fingerprint of the account's stored secret hash, which changes whenever its
   * password is set again: a portal session records it, so a new password ends the old
   * sessions. Undefined for an unknown id.
   */
  secretStamp(id: string): string | undefined {
    const account = id.startsWith(tokenIdPrefix)
      ? this.tokens.get(id.slice(tokenIdPrefix.length))
      : this.users.get(id);
    if (!account) return undefined;
    return createHash("sha256").update(account.secretHash).digest("base64url").slice(0, 16);
  }

  /**
   * The principal of a bare name from a refresh token issued before the namespaces were
   * separate: the user or the token of that name, and nobody when both exist (it could
   * be either, and must not become the other).
   */
  legacyPrincipal(name: string): Principal | undefined {
    const user = this.users.get(name);
    const token = this.tokens.get(name);
    if (user && token) return undefined;
    return (user ?? token)?.principal;
  }

  /**
   * The principal whose name and secret these are, or undefined. Throws TOOMANYREQUESTS
   * (with Retry-After) when `client` failed too often lately or too many checks wait.
   */
  async verify(name: string, secret: string, client: string): Promise<Principal | undefined> {
    const key = createHash("sha256").update(name).update("\0").update(secret).digest("hex");
    const now = this.now();
    const cached = this.remembered.get(key);
    if (cached && cached.until > now) return cached.principal;
    // The same credentials being checked already (a client's parallel first requests):
    // wait for that check instead of running and counting another.
    const running = this.inFlight.get(key);
    if (running) return running;
    // A pair known to be wrong costs nothing and teaches a guesser nothing: not counted.
    const failedUntil = this.failed.get(key);
    if (failedUntil !== undefined && failedUntil > now) return undefined;
    try {
      this.throttle.take(client);
    } catch (error) {
      // A throttled client's 429 waits a second: a client retrying at once in a loop then
      // costs the server one cheap answer a second per connection, not thousands, so its
      // refusals cannot take the CPU that pushes and pulls need either.
      if (this.throttledDelayMs > 0) await delay(this.throttledDelayMs);
      throw error;
    }
    let principal: Principal | undefined;
    const checking = this.gate.run(() => this.match(name, secret));
    this.inFlight.set(key, checking);
    try {
      principal = await checking;
    } catch (error) {
      this.throttle.refund(client);
      throw error;
    } finally {
      this.inFlight.delete(key);
    }
    if (principal) {
      this.throttle.refund(client);
      remember(this.remembered, key, { principal, until: this.now() + rememberMs });
    } else {
      remember(this.failed, key, this.now() + rememberFailureMs);
    }
    return principal;
  }

  private async match(name: string, secret: string): Promise<Principal | undefined> {
    for (const account of [this.users.get(name), this.tokens.get(name)]) {
      if (account && (await this.check(secret, account.secretHash))) return account.principal;
    }
    return undefined;
  }
}

/** Principal names cannot hold ":" (config schema), so this prefix cannot be a user's. */
const tokenIdPrefix = "token:";

type UserEntry = Config["auth"]["users"][number];
type TokenEntry = Config["auth"]["tokens"][number];

/** The file's entries by name, replaced or removed by the records of the same name. */
function overlay<T extends { name: string }>(
  file: readonly T[],
  records: readonly ControlRecord[],
  parse: (name: string, value: Record<string, unknown>) => T,
): T[] {
  const byName = new Map(file.map((entry) => [entry.name, entry]));
  for (const record of records) {
    if (record.value === null) {
      byName.delete(record.name);
      continue;
    }
    try {
      byName.set(record.name, parse(record.name, JSON.parse(record.value)));
    } catch {
      // A record this version cannot read names nobody who may log in.
      byName.delete(record.name);
    }
  }
  return [...byName.values()];
}

function remember<V>(cache: Map<string, V>, key: string, value: V): void {
  if (cache.size >= maxRemembered) cache.clear();
  cache.set(key, value);
}

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
