// Builds a replica's authentication from its configuration, and enforces the default:
// with no users or tokens a replica that listens only on loopback serves without
// authentication (as Distribution does), and one listening anywhere else refuses to start
// unless `auth.insecureNoAuth` (or --insecure-no-auth) says so.
import type { ApiExtension } from "../api/api-server.ts";
import type { Config } from "../config/config-schema.ts";
import { ConfigError } from "../config/load-config.ts";
import { Authorizer } from "./authorizer.ts";
import { Credentials } from "./credentials.ts";
import { createTokenEndpoint } from "./token-endpoint.ts";
import { TokenService } from "./token-service.ts";

export interface ReplicaAuth {
  authorizer: Authorizer | undefined;
  extensions: ApiExtension[];
}

export function buildAuth(config: Config, listenHost: string): ReplicaAuth {
  const credentials = new Credentials(config.auth);
  if (!credentials.configured) {
    if (!isLoopback(listenHost) && !config.auth.insecureNoAuth) {
      throw new ConfigError(
        `refusing to serve ${config.listen} without authentication: add users (meridian user add) or set auth.insecureNoAuth / --insecure-no-auth`,
      );
    }
    return { authorizer: undefined, extensions: [] };
  }
  const signingKey = config.auth.signingKey;
  if (!signingKey) {
    throw new ConfigError(
      "invalid configuration:\n  auth.signingKey: required once users or tokens exist (or MERIDIAN_TOKEN_SIGNING_KEY)",
    );
  }
  const tokens = new TokenService({
    signingKey,
    service: config.auth.service,
    tokenTtlSeconds: config.auth.tokenTtlSeconds,
    refreshTtlSeconds: config.auth.refreshTtlSeconds,
  });
  const authorizer = new Authorizer({
    credentials,
    tokens,
    anonymousPull: config.auth.anonymousPull,
    realm: config.auth.realm,
    tls: config.tls !== undefined,
  });
  return {
    authorizer,
    extensions: [
      createTokenEndpoint({ credentials, tokens, anonymousPull: config.auth.anonymousPull }),
    ],
  };
}

export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
