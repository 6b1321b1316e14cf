// The portal's browser sessions: after a login with a user's name and password, the
// browser holds one cookie (HttpOnly, SameSite=Strict, Secure over HTTPS) whose value is a
// JWT signed with the replicas' shared signing key, so that every replica and the global
// endpoint in front of them accept it. The token names the principal and carries a random
// CSRF value: a state-changing request made with the cookie must repeat that value in the
// X-Meridian-CSRF header, which a page of another origin can neither read nor set. The
// principal's roles are looked up at every request, never taken from the cookie: a user
// deleted or demoted loses the session's rights at once; the token also records a stamp
// of the user's password hash, so a new password ends the sessions made with the old one.
import { randomBytes, timingSafeEqual } from "node:crypto";
import { errors, type JWTHeaderParameters, jwtVerify, SignJWT } from "jose";
import { SigningKeyring } from "./signing-keyring.ts";

export const sessionCookieName = "meridian-session";
export const csrfHeaderName = "x-meridian-csrf";

export interface PortalSessionOptions {
  /** One fixed key (tests), or the keyring the bearer tokens are signed with. */
  signingKey?: string;
  keyring?: SigningKeyring;
  service: string;
  /** Seconds a session lasts from its login; default 12 hours. */
  ttlSeconds?: number;
  /** Seconds since the epoch (tests pass their own clock). */
  now?: () => number;
}

export interface PortalSession {
  /** The principal id (a user's name). */
  subject: string;
  /** The value the X-Meridian-CSRF header must carry on state-changing requests. */
  csrf: string;
  /** The user's password stamp at login (Credentials.secretStamp). */
  stamp: string;
  /** Seconds since the epoch when the session ends. */
  expiresAt: number;
}

const issuer = "meridian";
const defaultTtlSeconds = 12 * 3600;

export class PortalSessions {
  private readonly keyring: SigningKeyring;
  private readonly audience: string;
  private readonly now: () => number;
  readonly ttlSeconds: number;

  constructor(options: PortalSessionOptions) {
    this.keyring = options.keyring ?? new SigningKeyring(options.signingKey);
    // Its own audience: a session is no bearer token, and a bearer token no session.
    this.audience = `${options.service}/portal`;
    this.ttlSeconds = options.ttlSeconds ?? defaultTtlSeconds;
    this.now = options.now ?? (() => Math.floor(Date.now() / 1000));
  }

  /** The key a session's header names (a rotated-out key: none, the session ends). */
  private readonly keyFor = (header: JWTHeaderParameters): Uint8Array => {
    const key = this.keyring.lookup(header.kid);
    if (!key) throw new errors.JWKSNoMatchingKey();
    return key;
  };

  /** A new session of the principal: the cookie value and the session it holds. */
  async issue(subject: string, stamp: string): Promise<{ token: string; session: PortalSession }> {
    const csrf = randomBytes(24).toString("base64url");
    const issuedAt = this.now();
    const expiresAt = issuedAt + this.ttlSeconds;
    const { kid, key } = this.keyring.current();
    const token = await new SignJWT({ csrf, stamp })
      .setProtectedHeader({ alg: "HS256", typ: "JWT", kid })
      .setIssuer(issuer)
      .setAudience(this.audience)
      .setSubject(subject)
      .setIssuedAt(issuedAt)
      .setExpirationTime(expiresAt)
      .sign(key);
    return { token, session: { subject, csrf, stamp, expiresAt } };
  }

  /** The session a cookie value holds, or undefined when it is forged, expired or foreign. */
  async verify(token: string): Promise<PortalSession | undefined> {
    try {
      const { payload } = await jwtVerify(token, this.keyFor, {
        issuer,
        audience: this.audience,
        algorithms: ["HS256"],
        currentDate: new Date(this.now() * 1000),
      });
      const { sub, csrf, stamp, exp } = payload;
      if (typeof sub !== "string" || typeof csrf !== "string") return undefined;
      if (typeof stamp !== "string" || typeof exp !== "number") return undefined;
      return { subject: sub, csrf, stamp, expiresAt: exp };
    } catch {
      return undefined;
    }
  }
}

/** The session cookie's value among the request's cookies, if any. */
export function readSessionCookie(header: string | undefined): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq === -1) continue;
    if (part.slice(0, eq).trim() === sessionCookieName) {
      const value = part.slice(eq + 1).trim();
      return value === "" ? undefined : value;
    }
  }
  return undefined;
}

/** The Set-Cookie value that stores a session (or, with an empty token, removes it). */
export function sessionCookie(token: string, options: { secure: boolean; maxAgeSeconds: number }) {
  const parts = [
    `${sessionCookieName}=${token}`,
    "Path=/",
    "HttpOnly",
    "SameSite=Strict",
    `Max-Age=${token === "" ? 0 : options.maxAgeSeconds}`,
  ];
  if (options.secure) parts.push("Secure");
  return parts.join("; ");
}

/** Methods that change nothing, which a cookie alone may authorize. */
export function isSafeMethod(method: string | undefined): boolean {
  return method === "GET" || method === "HEAD" || method === "OPTIONS";
}

/** Whether the CSRF header repeats the session's value (compared in constant time). */
export function csrfMatches(session: PortalSession, header: string | string[] | undefined) {
  if (typeof header !== "string") return false;
  const given = Buffer.from(header);
  const expected = Buffer.from(session.csrf);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
