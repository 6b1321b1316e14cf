// Builds the configuration from, in increasing precedence, a YAML file, MERIDIAN_*
// environment variables and command-line flags, then validates it once.
import { readFile } from "node:fs/promises";
import { parse as parseYaml } from "yaml";
import type { ZodError } from "zod";
import { findRegion } from "../geo/regions.ts";
import { type Config, type ConfigInput, configSchema, type ReplicaEntry } from "./config-schema.ts";
import { parseListenAddress } from "./listen-address.ts";

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

export interface ConfigSources {
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  flags?: Partial<
    Record<"listen" | "data" | "logLevel" | "replicaId" | "region" | "workers", string | undefined>
  > & { insecureNoAuth?: boolean | undefined; allowHttp?: boolean | undefined };
}

/**
 * Loads and checks the configuration. For `serve` (the default) it becomes the
 * configuration of one replica; with `topologyOnly` (launcher, CLI) the replica list is
 * checked but no replica is selected.
 */
export async function loadConfig(
  sources: ConfigSources,
  options: { topologyOnly?: boolean } = {},
): Promise<Config> {
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
  overlay("region", env.MERIDIAN_REGION);
  const workers = sources.flags?.workers ?? env.MERIDIAN_WORKERS;
  if (workers !== undefined && workers !== "") {
    merged.workers = /^\d+$/.test(workers) ? Number(workers) : workers;
  }
  overlay("region", sources.flags?.region);
  const signingKey = env.MERIDIAN_TOKEN_SIGNING_KEY;
  if (signingKey) merged.auth = { ...(isObject(merged.auth) ? merged.auth : {}), signingKey };
  if (sources.flags?.allowHttp) merged.allowHttp = true;
  if (sources.flags?.insecureNoAuth) {
    merged.auth = { ...(isObject(merged.auth) ? merged.auth : {}), insecureNoAuth: true };
  }
  const secret = env.MERIDIAN_REPLICATION_SECRET;
  if (secret) {
    merged.replication = { ...(isObject(merged.replication) ? merged.replication : {}), secret };
  }
  const routes = env.MERIDIAN_PEER_ROUTES;
  if (routes) {
    const replication = isObject(merged.replication) ? merged.replication : {};
    merged.replication = { ...replication, routesFile: routes };
  }
  if (env.MERIDIAN_SUPERVISOR && env.MERIDIAN_SUPERVISOR_TOKEN) {
    merged.supervisor = { url: env.MERIDIAN_SUPERVISOR, token: env.MERIDIAN_SUPERVISOR_TOKEN };
  }
  const level = sources.flags?.logLevel ?? env.MERIDIAN_LOG_LEVEL;
  if (level) merged.log = { ...(isObject(merged.log) ? merged.log : {}), level };
  const result = configSchema.safeParse(merged as ConfigInput);
  if (!result.success) throw new ConfigError(describe(result.error, fromFile));
  if (options.topologyOnly) {
    const problems = topologyProblems(result.data);
    if (problems.length > 0) {
      throw new ConfigError(`invalid configuration:\n${problems.map((p) => `  ${p}`).join("\n")}`);
    }
    return result.data;
  }
  return selectReplica(result.data, sources.flags ?? {}, env);
}

/**
 * With a `replicas` list, this process is the replica of `region`: its listen address,
 * data folder and peers come from its entry unless a flag or variable says otherwise.
 * MERIDIAN_PEER_<REGION>=<url> overrides a peer's URL (the launcher routes peers through
 * WAN links that way).
 */
function selectReplica(
  config: Config,
  flags: NonNullable<ConfigSources["flags"]>,
  env: NodeJS.ProcessEnv,
): Config {
  if (!config.replicas) {
    if (config.peers.length > 0 && !config.replication.secret) {
      throw new ConfigError(
        "invalid configuration:\n  replication.secret: required when peers are configured (or MERIDIAN_REPLICATION_SECRET)",
      );
    }
    return config;
  }
  const problems = topologyProblems(config);
  const region = config.region ?? config.replicas.find((r) => r.home)?.region;
  const listen = flags.listen ?? env.MERIDIAN_LISTEN;
  const data = flags.data ?? env.MERIDIAN_DATA;
  // A replica added since the file was written (`replication create` under `meridian up`)
  // is not in it: given its own address and folder, it joins the replicas the file lists.
  const added =
    region !== undefined && listen !== undefined && data !== undefined
      ? { region, home: false, listen, data, globalEndpointRouting: true }
      : undefined;
  const entry = config.replicas.find((r) => r.region === region) ?? added;
  if (!entry) problems.push(`region: ${region ?? "(none)"} is not one of the replicas`);
  else if (!config.replicas.includes(entry) && !findRegion(entry.region)) {
    problems.push(`region: ${entry.region} is not in the catalogue`);
  }
  if (config.replicas.length > 1 && !config.replication.secret) {
    problems.push(
      "replication.secret: required with several replicas (or MERIDIAN_REPLICATION_SECRET)",
    );
  }
  if (problems.length > 0 || !entry) {
    throw new ConfigError(`invalid configuration:\n${problems.map((p) => `  ${p}`).join("\n")}`);
  }
  const peerUrl = (peer: ReplicaEntry) =>
    env[`MERIDIAN_PEER_${peer.region.toUpperCase().replace(/-/g, "_")}`] ?? replicaEndpoint(peer);
  return {
    ...config,
    region: entry.region,
    listen: flags.listen ?? env.MERIDIAN_LISTEN ?? entry.listen,
    data: flags.data ?? env.MERIDIAN_DATA ?? entry.data,
    replicaId: config.replicaId ?? entry.region,
    peers: config.replicas
      .filter((r) => r.region !== entry.region)
      .map((r) => ({ region: r.region, url: peerUrl(r) })),
  };
}

/**
 * The base URL of a replica's regional endpoint: `endpoint`, or else derived from where it
 * listens. A replica listening on every interface (`:5001`, `0.0.0.0:5001`, `[::]:5001`)
 * is reached on this machine through loopback; other machines need `endpoint`.
 */
export function replicaEndpoint(entry: ReplicaEntry): string {
  if (entry.endpoint) return entry.endpoint;
  const { host, port } = parseListenAddress(entry.listen);
  const reachable = host === "0.0.0.0" ? "127.0.0.1" : host === "::" ? "::1" : host;
  return `http://${reachable.includes(":") ? `[${reachable}]` : reachable}:${port}`;
}

function topologyProblems(config: Config): string[] {
  const problems: string[] = [];
  const replicas = config.replicas ?? [];
  const seen = new Set<string>();
  for (const host of config.globalEndpoint?.hostedBy ?? []) {
    if (!replicas.some((r) => r.region === host))
      problems.push(`globalEndpoint.hostedBy: ${host} is not one of the replicas`);
  }
  for (const replica of replicas) {
    if (seen.has(replica.region)) problems.push(`replicas: region ${replica.region} appears twice`);
    const custom = replica.latitude !== undefined && replica.longitude !== undefined;
    if (!custom && !findRegion(replica.region)) {
      problems.push(
        `replicas: region ${replica.region} is not in the catalogue; give its latitude and longitude`,
      );
    }
    seen.add(replica.region);
    const port = parseListenAddress(replica.listen).port;
    if (port > 65535) problems.push(`replicas: ${replica.region}: listen port must be 0-65535`);
    if (port === 0 && !replica.endpoint) {
      problems.push(
        `replicas: ${replica.region}: listen needs a fixed port (peers and clients reach the replica there) or an endpoint`,
      );
    }
  }
  const homes = replicas.filter((r) => r.home).length;
  if (replicas.length > 0 && homes !== 1)
    problems.push(`replicas: exactly one replica must be home (found ${homes})`);
  return problems;
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
