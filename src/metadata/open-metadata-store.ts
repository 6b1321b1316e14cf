// Opens the metadata store a replica's configuration names (`storage.metadata`): the
// embedded SQLite file in the data folder (the default), or a PostgreSQL database the
// nodes of a region share. The PostgreSQL URL carries a password: it comes from the
// environment (MERIDIAN_POSTGRES_URL, which wins), the config, or a file, and only its
// redacted form (`redactUrl`) ever reaches a log line or an error message.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { MetadataStore } from "./metadata-store.ts";
import type { PostgresMetadataStore } from "./postgres-metadata-store.ts";
import { SqliteMetadataStore } from "./sqlite-metadata-store.ts";

/** The shape of the config's `storage.metadata`. */
export interface MetadataStorageConfig {
  driver: "sqlite" | "postgres";
  url?: string | undefined;
  urlFile?: string | undefined;
  schema?: string | undefined;
}

export interface OpenMetadataStoreOptions {
  config: MetadataStorageConfig;
  /** The replica's data folder, where the SQLite file lives. */
  dataDir: string;
  durable: boolean;
  env?: NodeJS.ProcessEnv;
  onListenerError: (error: unknown) => void;
  /** Told which store opened (with the URL redacted). */
  onOpen?: (description: string) => void;
  /** SQLite: other processes (the replica's workers) write the file too. */
  sharedWith?: { pollMs: number } | undefined;
}

export async function openMetadataStore(options: OpenMetadataStoreOptions): Promise<MetadataStore> {
  const { config, durable, onListenerError } = options;
  if (config.driver === "sqlite") {
    const path = join(options.dataDir, "metadata.db");
    const store = new SqliteMetadataStore({
      path,
      durable,
      onListenerError,
      sharedWith: options.sharedWith,
    });
    options.onOpen?.(`SQLite ${path}`);
    return store;
  }
  const url = await postgresUrl(config, options.env ?? process.env);
  const schema = config.schema ?? "public";
  // Loaded only when chosen, as the blob-store drivers are (open-blob-store.ts).
  const { PostgresMetadataStore } = await import("./postgres-metadata-store.ts");
  let store: PostgresMetadataStore;
  try {
    store = await PostgresMetadataStore.open({ url, schema, durable, onListenerError });
  } catch (error) {
    // pg's messages name the host or the user at most, never the password.
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`cannot open the PostgreSQL metadata store at ${redactUrl(url)}: ${reason}`, {
      cause: error,
    });
  }
  options.onOpen?.(`PostgreSQL ${redactUrl(url)} schema ${schema}`);
  return store;
}

/** How many nodes a region on PostgreSQL may run (each holds a clock slot). */
export const nodeSlots = 64;

/**
 * The leases of this node among the region's nodes on the same PostgreSQL schema
 * (postgres-node-lease.ts); `onLost`: their connection failed.
 */
export async function openNodeLease(
  config: MetadataStorageConfig,
  onLost: (error: unknown) => void,
  env: NodeJS.ProcessEnv = process.env,
) {
  const url = await postgresUrl(config, env);
  const { PostgresNodeLease } = await import("./postgres-node-lease.ts");
  try {
    return await PostgresNodeLease.open({
      url,
      schema: config.schema ?? "public",
      slots: nodeSlots,
      onLost,
    });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`cannot take a node lease at ${redactUrl(url)}: ${reason}`, { cause: error });
  }
}

async function postgresUrl(config: MetadataStorageConfig, env: NodeJS.ProcessEnv) {
  const fromEnv = env.MERIDIAN_POSTGRES_URL?.trim();
  if (fromEnv) return fromEnv;
  if (config.url) return config.url;
  if (config.urlFile) {
    let text: string;
    try {
      text = await readFile(config.urlFile, "utf8");
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(`storage.metadata.urlFile: cannot read ${config.urlFile}: ${reason}`);
    }
    const url = text.trim();
    if (!/^postgres(ql)?:\/\//.test(url)) {
      throw new Error(`storage.metadata.urlFile: ${config.urlFile} must hold a postgres:// URL`);
    }
    return url;
  }
  throw new Error(
    "storage.metadata: driver postgres needs url, urlFile or env MERIDIAN_POSTGRES_URL",
  );
}

/** The URL without its password, for logs and errors. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(an unparsable URL)";
  }
}

/**
 * A small pool over the region's PostgreSQL schema for the tables beside the metadata
 * (the leading node's checkpoints and webhook outbox; the store's migrations made them).
 * `onIdleError`: an idle connection the server ended, which the pool drops.
 */
export async function openPostgresPool(
  config: MetadataStorageConfig,
  options: { max: number; durable: boolean; onIdleError: (error: unknown) => void },
  env: NodeJS.ProcessEnv = process.env,
) {
  const url = await postgresUrl(config, env);
  const { default: pg } = await import("pg");
  const settings = [`-c search_path=${config.schema ?? "public"}`];
  if (!options.durable) settings.push("-c synchronous_commit=off");
  const pool = new pg.Pool({
    connectionString: url,
    options: settings.join(" "),
    max: options.max,
  });
  pool.on("error", options.onIdleError);
  return pool;
}
