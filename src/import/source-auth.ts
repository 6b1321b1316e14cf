// Authentication against a source registry, as Docker clients do it: a request answered
// 401 carries a challenge; `Bearer realm,service,scope` sends us to the realm (with Basic
// credentials when we have them, anonymously otherwise) for a token, cached per scope
// until it expires; `Basic` means the credentials go with every request. Credentials stay
// in this object: they are never logged and never part of an error message.
import { ImportFailure } from "./import-failure.ts";

export interface SourceCredentials {
  username: string;
  password: string;
}

export interface Challenge {
  scheme: "bearer" | "basic";
  params: Record<string, string>;
}

/** GET `url` with `headers`; the status and body text (the token endpoint's answer). */
export type TokenRequest = (
  url: URL,
  headers: Record<string, string>,
) => Promise<{ status: number; text: string }>;

export interface SourceAuthOptions {
  credentials?: SourceCredentials | undefined;
  /** Whether a realm URL may be used (plain HTTP only to loopback or an insecure source). */
  realmAllowed: (realm: URL) => boolean;
  requestToken: TokenRequest;
  now?: () => number;
}

/** Tokens are renewed this long before they expire. */
const expiryMarginMs = 5_000;

export class SourceAuth {
  private readonly tokens = new Map<string, { value: string; expiresAt: number }>();
  private basic = false;
  private readonly now: () => number;

  constructor(private readonly options: SourceAuthOptions) {
    this.now = options.now ?? Date.now;
  }

  /** The Authorization header for a request needing `scope`, when one is known. */
  headerFor(scope: string): string | undefined {
    const token = this.tokens.get(scope);
    if (token && token.expiresAt > this.now()) return `Bearer ${token.value}`;
    if (this.basic) return this.basicHeader();
    return undefined;
  }

  /**
   * Answers a 401's `WWW-Authenticate` for a request needing `scope`: resolves true when a
   * retry may now succeed. Throws ImportFailure when the source refuses what we have.
   */
  async answer(header: string | null, scope: string): Promise<boolean> {
    const challenge = header ? parseChallenge(header) : undefined;
    if (!challenge) {
      throw new ImportFailure(
        "the source answered 401 without a usable WWW-Authenticate challenge",
      );
    }
    if (challenge.scheme === "basic") {
      if (!this.options.credentials) throw this.needCredentials();
      if (this.basic) throw new ImportFailure("the source refused the username or password");
      this.basic = true;
      return true;
    }
    const realm = challenge.params.realm;
    let url: URL;
    try {
      url = new URL(realm ?? "");
    } catch {
      throw new ImportFailure("the source's Bearer challenge names no valid realm");
    }
    if (
      (url.protocol !== "https:" && url.protocol !== "http:") ||
      !this.options.realmAllowed(url)
    ) {
      throw new ImportFailure(
        `the source's token realm ${url.origin} is not HTTPS (allowed only for loopback or with --source-insecure)`,
      );
    }
    if (challenge.params.service) url.searchParams.set("service", challenge.params.service);
    url.searchParams.set("scope", challenge.params.scope ?? scope);
    const headers: Record<string, string> = {};
    if (this.options.credentials) headers.Authorization = this.basicHeader();
    const answer = await this.options.requestToken(url, headers);
    if (answer.status === 401 || answer.status === 403) {
      throw this.options.credentials
        ? new ImportFailure("the source's token endpoint refused the username or password")
        : this.needCredentials();
    }
    if (answer.status !== 200) {
      throw new ImportFailure(`the source's token endpoint answered ${answer.status}`);
    }
    const token = tokenOf(answer.text);
    if (!token) throw new ImportFailure("the source's token endpoint sent no token");
    const previous = this.tokens.get(scope);
    this.tokens.set(scope, {
      value: token.value,
      expiresAt: this.now() + Math.max(token.expiresInSeconds * 1000 - expiryMarginMs, 1_000),
    });
    // The same token again for the same scope: the source will not let us in with it.
    if (previous?.value === token.value) throw this.refused();
    return true;
  }

  /** The error for a request still refused with credentials the source accepted. */
  refused(): ImportFailure {
    return this.options.credentials
      ? new ImportFailure("the source refused access to the image with these credentials")
      : this.needCredentials();
  }

  private needCredentials(): ImportFailure {
    return new ImportFailure(
      "the source requires authentication: give --username and --password-stdin",
    );
  }

  private basicHeader(): string {
    const { username, password } = this.options.credentials ?? { username: "", password: "" };
    return `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
  }
}

function tokenOf(text: string): { value: string; expiresInSeconds: number } | undefined {
  try {
    const body = JSON.parse(text) as {
      token?: unknown;
      access_token?: unknown;
      expires_in?: unknown;
    };
    const value = typeof body.token === "string" ? body.token : body.access_token;
    if (typeof value !== "string" || value === "") return undefined;
    const expires =
      typeof body.expires_in === "number" && body.expires_in > 0 ? body.expires_in : 60;
    return { value, expiresInSeconds: expires };
  } catch {
    return undefined;
  }
}

/**
 * The challenge of a `WWW-Authenticate` header: Bearer when offered, else Basic.
 * Parameters are `key=token` or `key="quoted string"` separated by commas.
 */
export function parseChallenge(header: string): Challenge | undefined {
  const found: Challenge[] = [];
  const item = /\s*([A-Za-z0-9_.-]+)(?:\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*)))?\s*,?/y;
  let current: Challenge | undefined;
  let match = item.exec(header);
  while (match && match[0] !== "") {
    const [, word = "", quoted, plain] = match;
    if (quoted === undefined && plain === undefined) {
      const scheme = word.toLowerCase();
      current = scheme === "bearer" || scheme === "basic" ? { scheme, params: {} } : undefined;
      if (current) found.push(current);
    } else if (current) {
      current.params[word.toLowerCase()] = quoted?.replace(/\\(.)/g, "$1") ?? plain ?? "";
    }
    match = item.exec(header);
  }
  return found.find((c) => c.scheme === "bearer") ?? found[0];
}
