// A replica's authentication, kept up to date from the control records: users and tokens
// (over the configuration file's) and the token signing keys. With no auth.signingKey
// configured, the home replica makes a key record as soon as accounts exist, so that every
// replica signs and checks tokens with the same key; `rotate` adds a newer key (new tokens
// use it; tokens signed with older keys stay valid until they expire, then the old key
// goes).
import type { Logger } from "pino";
import { buildAuth, signingKeysOf } from "../auth/build-auth.ts";
import { newSigningKey, signingKeyKind } from "../auth/signing-keyring.ts";
import { byCodeUnits } from "../code-unit-order.ts";
import type { Config } from "../config/config-schema.ts";
import type { Registry } from "../registry/registry.ts";

const watchedKinds = ["user", "token", signingKeyKind];

export type ReplicaAuthHandle = Awaited<ReturnType<typeof startReplicaAuth>>;

export async function startReplicaAuth(options: {
  config: Config;
  host: string;
  registry: Registry;
  log: Logger;
  /** Whether this replica is the home replica now (it makes the shared keys). */
  isHome: () => boolean;
}) {
  const { config, registry, log } = options;
  const control = registry.control;
  const load = async () => ({
    users: await control.registers("user"),
    tokens: await control.registers("token"),
    signingKeys: await control.list(signingKeyKind),
  });
  const auth = buildAuth(config, options.host, await load());
  const { keyring, credentials } = auth;
  const lifetimeMs = Math.max(config.auth.tokenTtlSeconds, config.auth.refreshTtlSeconds) * 1000;

  let making: Promise<void> | undefined;
  /** On the home replica: a shared key once accounts exist and none is configured. */
  const ensureSharedKey = () => {
    if (making || keyring.shared || !credentials.configured || !options.isHome()) return;
    making = (async () => {
      const key = newSigningKey();
      await control.put(signingKeyKind, key.kid, { key: key.key, createdAt: key.createdAt });
      log.info({ kid: key.kid }, "made a token signing key shared by every replica");
    })()
      .catch((error: unknown) => log.error({ err: error }, "could not make a signing key"))
      .finally(() => {
        making = undefined;
      });
  };
  ensureSharedKey();
  const stop = control.onChange((kinds) => {
    if (!watchedKinds.some((kind) => kinds.has(kind))) return;
    load().then(
      (records) => {
        credentials.useRecords(records.users, records.tokens);
        keyring.useRecords(signingKeysOf(records.signingKeys));
        ensureSharedKey();
      },
      (error: unknown) => log.error({ err: error }, "could not reload users, tokens and keys"),
    );
  });

  return {
    ...auth,
    stop,
    /**
     * A new signing key (home replica): new tokens are signed with it. Keys replaced more
     * than a token lifetime ago go, as no valid token can name them any more.
     */
    async rotate(now: Date = new Date()): Promise<string> {
      const key = newSigningKey(now);
      const existing = signingKeysOf(await control.list(signingKeyKind)).sort((a, b) =>
        byCodeUnits(a.createdAt, b.createdAt),
      );
      await control.put(signingKeyKind, key.kid, { key: key.key, createdAt: key.createdAt });
      for (const [index, old] of existing.entries()) {
        const replacedAt = Date.parse(existing[index + 1]?.createdAt ?? key.createdAt);
        if (now.getTime() - replacedAt > lifetimeMs) await control.delete(signingKeyKind, old.kid);
      }
      return key.kid;
    },
  };
}
