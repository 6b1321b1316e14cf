// Builds a replica's authentication from its configuration and the control records, and
// enforces the default: with no users or tokens a replica that listens only on loopback
// serves without authentication (as Distribution does), and one listening anywhere else
// refuses to start unless `auth.insecureNoAuth` (or --insecure-no-auth) says so. Users
// and tokens may appear and go later (control records replicate): the authorizer asks
// the credentials on every request whether any exist.
import type { ApiExtension } from "../api/api-server.ts";
import type { Config } from "../config/config-schema.ts";
import { ConfigError } from "../config/load-config.ts";
import type { ControlRecord } from "../metadata/metadata-store.ts";
import { Authorizer } from "./authorizer.ts";
import { Credentials } from "./credentials.ts";
import { PortalSessions } from "./portal-session.ts";
import { type SigningKeyRecord, SigningKeyring } from "./signing-keyring.ts";
import { createTokenEndpoint } from "./token-endpoint.ts";
import { TokenService } from "./token-service.ts";

export interface ReplicaAuth {
  authorizer: Authorizer;
  credentials: Credentials;
  /** The portal's browser sessions, signed with the same key as the tokens. */
  sessions: PortalSessions;
  extensions: ApiExtension[];
  /** The signing keys; `keyring.shared` is false while only a key of this process exists. */
  keyring: SigningKeyring;
  /** Changed in place when the registry's settings change. */
  settings: LiveAuthSettings;
}

export interface LiveAuthSettings {
  anonymousPull: boolean;
  tokenTtlSeconds: number;
  refreshTtlSeconds: number;
}

export function buildAuth(
  config: Config,
  listenHost: string,
  records: {
    users: readonly ControlRecord[];
    tokens: readonly ControlRecord[];
    signingKeys?: readonly ControlRecord[];
  },
): ReplicaAuth {
  const credentials = new Credentials(config.auth);
  credentials.useRecords(records.users, records.tokens);
  if (!credentials.configured && !isLoopback(listenHost) && !config.auth.insecureNoAuth) {
    throw new ConfigError(
      `refusing to serve ${config.listen} without authentication: add users (meridian user add) or set auth.insecureNoAuth / --insecure-no-auth`,
    );
  }
  // Without auth.signingKey the home replica makes a key record once accounts exist, and
  // every replica takes it as it arrives.
  const keyring = new SigningKeyring(config.auth.signingKey);
  keyring.useRecords(signingKeysOf(records.signingKeys ?? []));
  // The settings the registry may change at run time (control records): read through
  // getters, so that a change takes effect on the next request.
  const settings: LiveAuthSettings = {
    anonymousPull: config.auth.anonymousPull,
    tokenTtlSeconds: config.auth.tokenTtlSeconds,
    refreshTtlSeconds: config.auth.refreshTtlSeconds,
  };
  const tokens = new TokenService({
    keyring,
    service: config.auth.service,
    get tokenTtlSeconds() {
      return settings.tokenTtlSeconds;
    },
    refreshTtlSeconds: config.auth.refreshTtlSeconds,
  });
  const sessions = new PortalSessions({ keyring, service: config.auth.service });
  const authorizer = new Authorizer({
    credentials,
    tokens,
    get anonymousPull() {
      return settings.anonymousPull;
    },
    realm: config.auth.realm,
    tls: config.tls !== undefined,
    sessions,
  });
  return {
    authorizer,
    credentials,
    sessions,
    extensions: [
      createTokenEndpoint({
        credentials,
        tokens,
        get anonymousPull() {
          return settings.anonymousPull;
        },
      }),
    ],
    keyring,
    settings,
  };
}

/** The readable signing-key records (a deleted or malformed one is left out). */
export function signingKeysOf(records: readonly ControlRecord[]): SigningKeyRecord[] {
  const keys: SigningKeyRecord[] = [];
  for (const record of records) {
    if (record.value === null) continue;
    const value = JSON.parse(record.value) as Partial<SigningKeyRecord>;
    if (typeof value.key !== "string" || value.key.length < 32) continue;
    keys.push({ kid: record.name, key: value.key, createdAt: String(value.createdAt ?? "") });
  }
  return keys;
}

export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
