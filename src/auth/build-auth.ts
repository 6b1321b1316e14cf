// Builds a replica's authentication from its configuration and the control records, and
// enforces the default: with no users or tokens a replica that listens only on loopback
// serves without authentication (as Distribution does), and one listening anywhere else
// refuses to start unless `auth.insecureNoAuth` (or --insecure-no-auth) says so. Users
// and tokens may appear and go later (control records replicate): the authorizer asks
// the credentials on every request whether any exist.
import { randomBytes } from "node:crypto";
import type { ApiExtension } from "../api/api-server.ts";
import type { Config } from "../config/config-schema.ts";
import { ConfigError } from "../config/load-config.ts";
import type { ControlRecord } from "../metadata/metadata-store.ts";
import { Authorizer } from "./authorizer.ts";
import { Credentials } from "./credentials.ts";
import { PortalSessions } from "./portal-session.ts";
import { createTokenEndpoint } from "./token-endpoint.ts";
import { TokenService } from "./token-service.ts";

export interface ReplicaAuth {
  authorizer: Authorizer;
  credentials: Credentials;
  /** The portal's browser sessions, signed with the same key as the tokens. */
  sessions: PortalSessions;
  extensions: ApiExtension[];
  /** No signing key was configured: tokens are signed with a key of this process only. */
  ephemeralSigningKey: boolean;
}

export function buildAuth(
  config: Config,
  listenHost: string,
  records: { users: readonly ControlRecord[]; tokens: readonly ControlRecord[] },
): ReplicaAuth {
  const credentials = new Credentials(config.auth);
  credentials.useRecords(records.users, records.tokens);
  if (!credentials.configured && !isLoopback(listenHost) && !config.auth.insecureNoAuth) {
    throw new ConfigError(
      `refusing to serve ${config.listen} without authentication: add users (meridian user add) or set auth.insecureNoAuth / --insecure-no-auth`,
    );
  }
  if (credentials.configured && !config.auth.signingKey) {
    throw new ConfigError(
      "invalid configuration:\n  auth.signingKey: required once users or tokens exist (or MERIDIAN_TOKEN_SIGNING_KEY)",
    );
  }
  const signingKey = config.auth.signingKey ?? randomBytes(32).toString("hex");
  const tokens = new TokenService({
    signingKey,
    service: config.auth.service,
    tokenTtlSeconds: config.auth.tokenTtlSeconds,
    refreshTtlSeconds: config.auth.refreshTtlSeconds,
  });
  const sessions = new PortalSessions({ signingKey, service: config.auth.service });
  const authorizer = new Authorizer({
    credentials,
    tokens,
    anonymousPull: config.auth.anonymousPull,
    realm: config.auth.realm,
    tls: config.tls !== undefined,
    sessions,
  });
  return {
    authorizer,
    credentials,
    sessions,
    extensions: [
      createTokenEndpoint({ credentials, tokens, anonymousPull: config.auth.anonymousPull }),
    ],
    ephemeralSigningKey: config.auth.signingKey === undefined,
  };
}

export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
