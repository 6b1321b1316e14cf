// The registry's settings as control-plane records (kind "setting", named by their
// configuration path): a record overrides the configuration file's value in every
// replica, and takes effect there without a restart; deleting it brings the file's value
// back. Only the settings below can be set this way: each with its schema, where the
// file's value is read, and how a replica applies it.
import { z } from "zod";
import type { LiveAuthSettings } from "../auth/build-auth.ts";
import type { Config } from "../config/config-schema.ts";
import type { ControlRecords } from "../registry/control-records.ts";

export const settingKind = "setting";

/** What a setting changes in a running replica. */
export interface LiveSettings {
  auth: LiveAuthSettings;
  /** Replication's anti-entropy period, when this replica replicates. */
  antiEntropyIntervalMs?: (ms: number) => void;
}

interface SettingDefinition {
  description: string;
  schema: z.ZodType<unknown>;
  fromConfig: (config: Config) => unknown;
  apply: (live: LiveSettings, value: unknown) => void;
}

export const settingDefinitions: Record<string, SettingDefinition> = {
  "auth.anonymousPull": {
    description: "anyone may pull without credentials",
    schema: z.boolean(),
    fromConfig: (config) => config.auth.anonymousPull,
    apply: (live, value) => {
      live.auth.anonymousPull = value as boolean;
    },
  },
  "auth.tokenTtlSeconds": {
    description: "how long a bearer token is valid",
    schema: z.number().int().positive().max(86_400),
    fromConfig: (config) => config.auth.tokenTtlSeconds,
    apply: (live, value) => {
      live.auth.tokenTtlSeconds = value as number;
    },
  },
  "auth.refreshTtlSeconds": {
    description: "how long a refresh token (docker login) is valid",
    schema: z
      .number()
      .int()
      .positive()
      .max(90 * 86_400),
    fromConfig: (config) => config.auth.refreshTtlSeconds,
    apply: (live, value) => {
      live.auth.refreshTtlSeconds = value as number;
    },
  },
  "replication.antiEntropySeconds": {
    description: "how often every repository is compared with every peer",
    schema: z.number().positive().max(86_400),
    fromConfig: (config) => config.replication.antiEntropySeconds,
    apply: (live, value) => live.antiEntropyIntervalMs?.((value as number) * 1000),
  },
};

export interface SettingView {
  name: string;
  value: unknown;
  /** `registry`: a record set it; `file`: the configuration file's value (or default). */
  source: "registry" | "file";
  description: string;
}

export class RegistrySettings {
  constructor(
    private readonly control: ControlRecords,
    private readonly config: Config,
  ) {}

  async list(): Promise<SettingView[]> {
    const records = new Map((await this.control.list(settingKind)).map((r) => [r.name, r]));
    return Object.entries(settingDefinitions).map(([name, definition]) => {
      const record = records.get(name);
      const parsed = record ? readValue(definition, record.value) : undefined;
      return parsed !== undefined
        ? { name, value: parsed, source: "registry", description: definition.description }
        : {
            name,
            value: definition.fromConfig(this.config),
            source: "file",
            description: definition.description,
          };
    });
  }

  /** Applies every setting's current value to the live settings of this replica. */
  async applyTo(live: LiveSettings): Promise<void> {
    for (const view of await this.list()) settingDefinitions[view.name]?.apply(live, view.value);
  }

  /** Checks and records a value; throws a readable Error for an unknown name or a bad value. */
  async set(name: string, value: unknown): Promise<void> {
    const definition = settingDefinitions[name];
    if (!definition) throw new Error(`unknown setting '${name}': one of ${knownNames()}`);
    const parsed = definition.schema.safeParse(value);
    if (!parsed.success) {
      throw new Error(`${name}: ${parsed.error.issues[0]?.message ?? "invalid value"}`);
    }
    await this.control.put(settingKind, name, { value: parsed.data });
  }

  /** Applies the settings now and whenever a setting record changes; returns the stop. */
  follow(live: LiveSettings, onError: (error: unknown) => void): () => void {
    const apply = () => void this.applyTo(live).catch(onError);
    apply();
    return this.control.onChange((kinds) => {
      if (kinds.has(settingKind)) apply();
    });
  }

  /** Back to the file's value; false when the registry had not set it. */
  async reset(name: string): Promise<boolean> {
    if (!settingDefinitions[name])
      throw new Error(`unknown setting '${name}': one of ${knownNames()}`);
    return this.control.delete(settingKind, name);
  }
}

function readValue(definition: SettingDefinition, text: string | null): unknown {
  try {
    const parsed = definition.schema.safeParse(
      (JSON.parse(text ?? "null") as { value?: unknown })?.value,
    );
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

function knownNames(): string {
  return Object.keys(settingDefinitions).join(", ");
}
