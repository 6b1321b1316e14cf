// The configuration of one replica: its schema, defaults and the checks that run at
// start so that every bad value is reported with its path and a clear message.
import { isIP } from "node:net";
import { z } from "zod";
import { blobStorageSchema } from "./blob-storage-schema.ts";

const listenPattern = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]*):\d{1,5}$/;

/** `10.0.0.0/8`, `fd00::/8`, or a single address. */
const cidr = z.string().refine((value) => {
  const [address = "", prefix, extra] = value.split("/");
  const family = isIP(address);
  if (family === 0 || extra !== undefined) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 6 ? 128 : 32);
}, "expected a CIDR such as 10.0.0.0/8, or an address");

/** A region's name: lowercase letters, digits and dashes, starting with a letter. */
export const regionNamePattern = /^[a-z][a-z0-9-]{0,62}$/;

const regionName = z
  .string()
  .regex(regionNamePattern, "lowercase letters, digits and dashes, starting with a letter");

const replicaEntry = z
  .object({
    region: regionName,
    home: z.boolean().default(false),
    listen: z.string().regex(listenPattern, "expected host:port"),
    data: z.string().min(1),
    /** The regional endpoint peers and clients use, when it differs from http://<listen>. */
    endpoint: z.string().url().optional(),
    /** Whether the global endpoint may route requests here. */
    globalEndpointRouting: z.boolean().default(true),
    /** Coordinates for a region the catalogue does not know. */
    latitude: z.number().min(-90).max(90).optional(),
    longitude: z.number().min(-180).max(180).optional(),
  })
  .strict();

export const grant = z
  .object({
    repositories: z.string().min(1),
    actions: z.array(z.enum(["pull", "push", "delete"])).min(1),
  })
  .strict();

const secretHash = z
  .string()
  .regex(/^scrypt\$/, "must be a hash made by `meridian user|token add`");
const principalName = z.string().regex(/^[A-Za-z0-9._@-]{1,64}$/, "letters, digits and ._@- only");

/** A user: made by `meridian user add`. */
export const userEntry = z
  .object({
    name: principalName,
    passwordHash: secretHash,
    admin: z.boolean().default(false),
    permissions: z.array(grant).default([]),
  })
  .strict();

/** A repository-scoped token, like ACR's tokens with scope maps: made by `meridian token add`. */
export const tokenEntry = z
  .object({
    name: principalName,
    secretHash,
    permissions: z.array(grant).min(1),
  })
  .strict();

/**
 * The metadata store: the embedded SQLite file (default), or a PostgreSQL database the nodes
 * of a region share. The URL (with its password) from `url`, the file `urlFile`, or env
 * MERIDIAN_POSTGRES_URL, which wins.
 */
const metadataStorage = z
  .object({
    driver: z.enum(["sqlite", "postgres"]).default("sqlite"),
    url: z
      .string()
      .regex(/^postgres(ql)?:\/\//, "expected postgres://user:password@host:port/database")
      .optional(),
    urlFile: z.string().min(1).optional(),
    schema: z
      .string()
      .regex(
        /^[a-z_][a-z0-9_]{0,62}$/,
        "lowercase letters, digits and _, not starting with a digit",
      )
      .optional(),
  })
  .strict()
  .default({});

export const configSchema = z
  .object({
    listen: z
      .string()
      .regex(listenPattern, "expected host:port, for example 127.0.0.1:5001 or [::1]:5001")
      .refine(
        (value) => Number(value.slice(value.lastIndexOf(":") + 1)) <= 65535,
        "port must be 0-65535",
      )
      .default("127.0.0.1:5001"),
    data: z.string().min(1, "must name a folder").default("./data/one"),
    replicaId: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "lowercase letters, digits and dashes, at most 63")
      .optional(),
    log: z
      .object({
        level: z
          .enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"])
          .default("info"),
      })
      .strict()
      .default({}),
    /**
     * How many processes serve this replica: `auto` is one per core. Every worker serves
     * pushes, pulls and the peer feed; the first also runs replication, webhooks, imports,
     * garbage collection and the control plane (env MERIDIAN_WORKERS).
     */
    workers: z
      .union([z.literal("auto"), z.number().int().min(1).max(256)], {
        errorMap: () => ({ message: "expected auto or a whole number from 1 to 256" }),
      })
      .default(1),
    storage: z
      .object({
        /** fsync blobs and metadata before acknowledging a write. */
        durable: z.boolean().default(true),
        /** Where the metadata lives: see src/metadata/open-metadata-store.ts. */
        metadata: metadataStorage,
        /** Where blob bytes live: the data folder, or an S3 bucket or Azure container. */
        blobs: blobStorageSchema.default({ driver: "filesystem" }),
      })
      .strict()
      .default({}),
    /** This replica's region; with `replicas`, selects this replica's entry. */
    region: regionName.optional(),
    /** Other replicas to replicate with (derived from `replicas` when that is given). */
    peers: z.array(z.object({ region: regionName, url: z.string().url() }).strict()).default([]),
    /** The whole registry, for a file shared by every replica and `meridian up`. */
    registry: z
      .object({ name: z.string().min(1).default("localhost:5000") })
      .strict()
      .default({}),
    replicas: z.array(replicaEntry).optional(),
    replication: z
      .object({
        /** Shared credential of the peers; or env MERIDIAN_REPLICATION_SECRET. */
        secret: z.string().min(16, "at least 16 characters").optional(),
        antiEntropySeconds: z.number().positive().default(30),
        /** How long a feed request waits for new records before it returns empty. */
        pollWaitMs: z.number().int().positive().max(30_000).default(25_000),
        /** Remote stamps further ahead of this replica's wall clock are refused. */
        maxClockSkewSeconds: z.number().positive().default(60),
        /**
         * How long the reachable peers have to say whether they hold a blob or manifest
         * this replica lacks (read-through, split pushes); a slower peer counts as "no".
         */
        readThroughTimeoutMs: z.number().int().positive().max(30_000).default(1000),
        /**
         * A JSON file {region: url} of routes to peers that override their recorded
         * endpoints; `meridian up` writes it to put its WAN links between replicas
         * (env MERIDIAN_PEER_ROUTES).
         */
        routesFile: z.string().min(1).optional(),
      })
      .strict()
      .default({}),
    /** Users, repository-scoped tokens and the token service. */
    auth: z
      .object({
        /** Signs the bearer tokens; shared by every replica so a token works in any region. */
        signingKey: z.string().min(32, "at least 32 characters").optional(),
        /** The token service's name (the `service` of challenges and tokens). */
        service: z.string().min(1).default("meridian"),
        /** Absolute URL of the token endpoint; default: <scheme>://<request Host>/token. */
        realm: z.string().url().optional(),
        tokenTtlSeconds: z.number().int().positive().max(86_400).default(300),
        refreshTtlSeconds: z.number().int().positive().default(86_400),
        anonymousPull: z.boolean().default(false),
        /** Serve without authentication on a non-loopback address (not recommended). */
        insecureNoAuth: z.boolean().default(false),
        users: z.array(userEntry).default([]),
        tokens: z.array(tokenEntry).default([]),
      })
      .strict()
      .default({}),
    /** Limits that keep slow or greedy clients from holding the server. */
    limits: z
      .object({
        headersTimeoutSeconds: z.number().positive().default(30),
        idleTimeoutSeconds: z.number().positive().default(120),
        /** 0: a request may take as long as it keeps sending (large uploads). */
        requestTimeoutSeconds: z.number().min(0).default(0),
        uploadsPerClient: z.number().int().positive().default(64),
        /**
         * Proxies (the global endpoint's addresses, a load balancer) whose X-Forwarded-For
         * names the client that per-client limits count; from anyone else it is ignored.
         */
        trustedProxies: z.array(cidr).default([]),
      })
      .strict()
      .default({}),
    /**
     * This replica's regional endpoint as peers and clients reach it, when it differs from
     * the address it listens on (recorded in the replica set when the replica joins).
     */
    endpoint: z.string().url().optional(),
    /** The home replica, for a replica that joined (`serve --join`) rather than read a topology. */
    homeReplica: z.object({ region: regionName, url: z.string().url() }).strict().optional(),
    /**
     * The local supervisor (`meridian up`) that starts and stops replica processes for
     * `replication create|delete`; set by the supervisor itself through the environment.
     */
    supervisor: z
      .object({ url: z.string().url(), token: z.string().min(16) })
      .strict()
      .optional(),
    /** Plain HTTP on a non-loopback address (behind a TLS-terminating proxy, say). */
    allowHttp: z.boolean().default(false),
    /** Certificate and key files: every listener of this process serves HTTPS. */
    tls: z
      .object({ cert: z.string().min(1), key: z.string().min(1) })
      .strict()
      .optional(),
    /** The global endpoint: one registry name in front of every replica. */
    globalEndpoint: z
      .object({
        listen: z.string().regex(listenPattern, "expected host:port").default("127.0.0.1:5000"),
        /**
         * The replicas whose processes serve the endpoint, each on its own machine (requests
         * routed to the host are handled in-process); absent: `meridian up` runs the endpoint
         * as a process of its own.
         */
        hostedBy: z
          .union([regionName, z.array(regionName)])
          .transform((value) => (Array.isArray(value) ? value : [value]))
          .optional(),
        /** proxy: bytes stream through; redirect: blob reads get 307 to the regional endpoint. */
        mode: z.enum(["proxy", "redirect"]).default("proxy"),
        /** distance: great-circle from the client; latency: measured round trip. */
        ranking: z.enum(["distance", "latency"]).default("distance"),
        /** Front proxies whose location header is believed (CIDRs). */
        trustedProxies: z.array(z.string()).default([]),
        locationHeader: z.string().default("X-Meridian-Client-Location"),
        /** CIDR -> region of the clients in it. */
        cidrRegions: z.record(z.string(), regionName).default({}),
        /** Where clients are when nothing else says (default: the home replica's region). */
        defaultRegion: regionName.optional(),
        probeIntervalMs: z.number().int().positive().default(1000),
        failureThreshold: z.number().int().positive().default(2),
        /** Locate clients by address with the bundled offline GeoIP data. */
        geoip: z.boolean().default(true),
      })
      .strict()
      .optional(),
    /** WAN emulation between the replicas that `meridian up` starts. */
    wan: z
      .object({
        rttMs: z.number().min(0).default(0),
        bytesPerSecond: z.number().positive().optional(),
      })
      .strict()
      .optional(),
    /** Webhooks: receiver safety and delivery (see src/webhooks/). */
    webhooks: z
      .object({
        /** Also refuse loopback and private receivers (link-local is always refused). */
        denyPrivateNetworks: z.boolean().default(false),
        /** Attempts per event before it is dead-lettered. */
        maxAttempts: z.number().int().min(1).max(100).default(8),
        /** The wait after the first failure; it doubles per failure (with jitter). */
        initialBackoffMs: z.number().int().positive().default(1000),
        maxBackoffMs: z.number().int().positive().default(300_000),
        /** How long a receiver may take to answer one attempt. */
        timeoutMs: z.number().int().positive().max(120_000).default(10_000),
        /** Attempts in flight at once, across every webhook of this replica. */
        concurrency: z.number().int().positive().max(256).default(8),
        /** How long a replicated manifest waits for its tag before it counts as a push by digest. */
        tagWaitMs: z.number().int().min(0).max(60_000).default(1000),
        /**
         * The webhooks `meridian apply -f` makes the registry hold (the replicas ignore
         * this list): each signing secret is read from the environment variable `secretEnv`.
         */
        hooks: z
          .array(
            z
              .object({
                name: z
                  .string()
                  .regex(/^[A-Za-z0-9._@-]{1,64}$/, "1-64 letters, digits and ._@- only"),
                uri: z.string().min(1),
                actions: z.array(z.enum(["push", "delete"])).min(1),
                location: regionName.optional(),
                scope: z.string().optional(),
                status: z.enum(["enabled", "disabled"]).default("enabled"),
                secretEnv: z
                  .string()
                  .regex(/^[A-Z_][A-Z0-9_]*$/, "an environment variable name")
                  .optional(),
              })
              .strict(),
          )
          .optional(),
      })
      .strict()
      .default({}),
    uploads: z
      .object({
        /** An upload that received nothing for this long is removed. */
        ttlSeconds: z
          .number()
          .int()
          .positive()
          .default(24 * 3600),
        sweepIntervalSeconds: z.number().int().positive().default(600),
      })
      .strict()
      .default({}),
    /** Garbage collection (see the README): each region reclaims its own blob bytes. */
    gc: z
      .object({
        /**
         * A blob linked, unlinked or uploaded within this long, and a link or an untagged
         * manifest younger than this, is never collected: it covers uploads in flight and
         * content still replicating.
         */
        graceSeconds: z.number().int().min(0).default(3600),
        /** A pass runs by itself this often; 0: only when asked (`meridian gc`). */
        intervalSeconds: z.number().int().min(0).default(86_400),
      })
      .strict()
      .default({}),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
export type ReplicaEntry = z.infer<typeof replicaEntry>;
export type ConfigInput = z.input<typeof configSchema>;
