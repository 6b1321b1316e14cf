// The admin API extensions of the control plane (the replica set, usage, where an image
// is, settings, signing keys, the join flow), put together for the composition root.
// Each is matched by its own path prefix, so they all come before the generic admin API.
import type { ApiExtension } from "../api/api-server.ts";
import type { Config } from "../config/config-schema.ts";
import { createImageApi } from "./image-api.ts";
import { createJoinApi } from "./join-api.ts";
import type { PeerDirectory } from "./peer-directory.ts";
import type { RegistrySettings } from "./registry-settings.ts";
import type { ReplicaAuthHandle } from "./replica-auth.ts";
import type { ReplicaLifecycle } from "./replica-lifecycle.ts";
import type { ReplicaSet } from "./replica-set.ts";
import { createReplicationsApi } from "./replications-api.ts";
import { createSettingsApi } from "./settings-api.ts";
import { createSigningKeysApi } from "./signing-keys-api.ts";
import { createUsageApi } from "./usage-api.ts";

export function controlPlaneApis(parts: {
  config: Config;
  replicaSet: ReplicaSet;
  directory: PeerDirectory;
  /** The home replica's lifecycle; undefined elsewhere. */
  lifecycle: ReplicaLifecycle | undefined;
  auth: ReplicaAuthHandle;
  settings: RegistrySettings;
}): ApiExtension[] {
  const { config, replicaSet, directory, lifecycle, auth, settings } = parts;
  const { authorizer } = auth;
  const homeOf = () => directory.home();
  return [
    createReplicationsApi({ replicaSet, authorizer, lifecycle, homeOf }),
    createUsageApi({ replicaSet, authorizer }),
    createSettingsApi({ settings, authorizer, homeOf }),
    createSigningKeysApi({
      keyring: auth.keyring,
      rotate: () => auth.rotate(),
      authorizer,
      homeOf,
    }),
    createImageApi({ directory, authorizer, secret: config.replication.secret }),
    createJoinApi({
      replicaSet,
      self: config.region ?? "local",
      secret: config.replication.secret,
      signingKey: config.auth.signingKey,
      homeOf,
    }),
  ];
}
