// Issues and verifies the short-lived bearer tokens of Docker token authentication: a
// JWT (HS256, jose) whose `access` claim lists the granted repository actions, and
// longer-lived refresh tokens. Every replica shares the signing keys (SigningKeyring), so
// a token issued in one region is valid in every other one; the header's kid names the key.
import { errors, type JWTHeaderParameters, jwtVerify, SignJWT } from "jose";
import { type Action, allActions, allowedActions, type Principal } from "./permissions.ts";
import { SigningKeyring } from "./signing-keyring.ts";

export interface AccessEntry {
  type: "repository" | "registry";
  name: string;
  actions: string[];
}

export interface VerifiedToken {
  subject: string;
  access: AccessEntry[];
}

export interface TokenServiceOptions {
  /** One fixed key (tests), or the keyring of rotating keys. */
  signingKey?: string;
  keyring?: SigningKeyring;
  service: string;
  tokenTtlSeconds: number;
  refreshTtlSeconds: number;
}

const issuer = "meridian";

export class TokenService {
  readonly keyring: SigningKeyring;
  /** Finds the key a token's header names; jose fails the verification without one. */
  private readonly keyFor = (header: JWTHeaderParameters): Uint8Array => {
    const key = this.keyring.lookup(header.kid);
    if (!key) throw new errors.JWKSNoMatchingKey();
    return key;
  };

  constructor(private readonly options: TokenServiceOptions) {
    this.keyring = options.keyring ?? new SigningKeyring(options.signingKey);
  }

  get service(): string {
    return this.options.service;
  }

  get ttlSeconds(): number {
    return this.options.tokenTtlSeconds;
  }

  /** Grants the requested scopes as far as the principal may, and signs them. */
  async issue(principal: Principal, scopes: readonly string[]): Promise<string> {
    const access: AccessEntry[] = [];
    for (const scope of scopes) {
      const parsed = parseScope(scope);
      if (!parsed) continue;
      if (parsed.type === "registry") {
        if (principal.admin && parsed.name === "catalog")
          access.push({ type: "registry", name: "catalog", actions: ["*"] });
        continue;
      }
      const wanted = parsed.actions.includes("*") ? allActions : parsed.actions.filter(isAction);
      const granted = allowedActions(principal, parsed.name, wanted);
      access.push({ type: "repository", name: parsed.name, actions: granted });
    }
    const { kid, key } = this.keyring.current();
    return new SignJWT({ access })
      .setProtectedHeader({ alg: "HS256", typ: "JWT", kid })
      .setIssuer(issuer)
      .setAudience(this.options.service)
      .setSubject(principal.id)
      .setIssuedAt()
      .setExpirationTime(`${this.options.tokenTtlSeconds}s`)
      .sign(key);
  }

  async issueRefresh(principal: Principal): Promise<string> {
    // `refresh: 2`: the subject is a principal id (token:<name> for a token). Version 1
    // (`true`) named users and tokens alike by their bare name.
    const { kid, key } = this.keyring.current();
    return new SignJWT({ refresh: 2 })
      .setProtectedHeader({ alg: "HS256", typ: "JWT", kid })
      .setIssuer(issuer)
      .setAudience(`${this.options.service}/refresh`)
      .setSubject(principal.id)
      .setIssuedAt()
      .setExpirationTime(`${this.options.refreshTtlSeconds}s`)
      .sign(key);
  }

  /** The token's subject and access, or undefined when it is invalid or expired. */
  async verify(token: string): Promise<VerifiedToken | undefined> {
    try {
      const { payload } = await jwtVerify(token, this.keyFor, {
        issuer,
        audience: this.options.service,
      });
      if (typeof payload.sub !== "string" || !Array.isArray(payload.access)) return undefined;
      return { subject: payload.sub, access: payload.access as AccessEntry[] };
    } catch (error) {
      if (error instanceof errors.JOSEError) return undefined;
      throw error;
    }
  }

  /**
   * The subject of a valid refresh token; `legacy` when it is a bare name from before users
   * and tokens had separate namespaces (it may be either).
   */
  async verifyRefresh(token: string): Promise<{ subject: string; legacy: boolean } | undefined> {
    try {
      const { payload } = await jwtVerify(token, this.keyFor, {
        issuer,
        audience: `${this.options.service}/refresh`,
      });
      if (typeof payload.sub !== "string") return undefined;
      return { subject: payload.sub, legacy: payload.refresh !== 2 };
    } catch (error) {
      if (error instanceof errors.JOSEError) return undefined;
      throw error;
    }
  }
}

/** `repository:<name>:<actions>` or `registry:catalog:*`. Names may hold colons only in the tag-less form. */
export function parseScope(
  scope: string,
): { type: "repository" | "registry"; name: string; actions: string[] } | undefined {
  const first = scope.indexOf(":");
  const last = scope.lastIndexOf(":");
  if (first <= 0 || last === first) return undefined;
  const type = scope.slice(0, first);
  if (type !== "repository" && type !== "registry") return undefined;
  return {
    type,
    name: scope.slice(first + 1, last),
    actions: scope
      .slice(last + 1)
      .split(",")
      .filter(Boolean),
  };
}

function isAction(value: string): value is Action {
  return value === "pull" || value === "push" || value === "delete";
}
