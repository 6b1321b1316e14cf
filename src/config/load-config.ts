// Builds the configuration from, in increasing precedence, a YAML file, MERIDIAN_*
// environment variables and command-line flags, then validates it once.
import { readFile } from "node:fs/promises";
import { parse as parseYaml } from "yaml";
import type { ZodError } from "zod";
import { type Config, type ConfigInput, configSchema } from "./config-schema.ts";

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

export interface ConfigSources {
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  flags?: Partial<Record<"listen" | "data" | "logLevel" | "replicaId", string | undefined>>;
}

export async function loadConfig(sources: ConfigSources): Promise<Config> {
  const env = sources.env ?? {};
  const fromFile = sources.file ?? env.MERIDIAN_CONFIG;
  const base = fromFile ? await readYaml(fromFile) : {};
  const merged: Record<string, unknown> = { ...base };
  const overlay = (key: string, value: string | undefined) => {
    if (value !== undefined && value !== "") merged[key] = value;
  };
  overlay("listen", env.MERIDIAN_LISTEN);
  overlay("data", env.MERIDIAN_DATA);
  overlay("replicaId", env.MERIDIAN_REPLICA_ID);
  overlay("listen", sources.flags?.listen);
  overlay("data", sources.flags?.data);
  overlay("replicaId", sources.flags?.replicaId);
  const level = sources.flags?.logLevel ?? env.MERIDIAN_LOG_LEVEL;
  if (level) merged.log = { ...(isObject(merged.log) ? merged.log : {}), level };
  const result = configSchema.safeParse(merged as ConfigInput);
  if (!result.success) throw new ConfigError(describe(result.error, fromFile));
  return result.data;
}

async function readYaml(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new ConfigError(`cannot read config file ${path}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (error) {
    throw new ConfigError(`config file ${path} is not valid YAML: ${(error as Error).message}`);
  }
  if (parsed === null || parsed === undefined) return {};
  if (!isObject(parsed)) throw new ConfigError(`config file ${path} must hold a mapping`);
  return parsed;
}

function describe(error: ZodError, file: string | undefined): string {
  const lines = error.issues.map((issue) => {
    const path = issue.path.length > 0 ? issue.path.join(".") : "(root)";
    return `  ${path}: ${issue.message}`;
  });
  return `invalid configuration${file ? ` (${file})` : ""}:\n${lines.join("\n")}`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
