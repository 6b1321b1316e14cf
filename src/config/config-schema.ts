// The configuration of one replica: its schema, defaults and the checks that run at
// start so that every bad value is reported with its path and a clear message.
import { z } from "zod";

const listenPattern = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]*):\d{1,5}$/;

const regionName = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,62}$/, "lowercase letters, digits and dashes, starting with a letter");

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
    storage: z
      .object({
        /** fsync blobs and metadata before acknowledging a write. */
        durable: z.boolean().default(true),
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
      })
      .strict()
      .default({}),
    /** WAN emulation between the replicas that `meridian up` starts. */
    wan: z
      .object({
        rttMs: z.number().min(0).default(0),
        bytesPerSecond: z.number().positive().optional(),
      })
      .strict()
      .optional(),
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
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
export type ReplicaEntry = z.infer<typeof replicaEntry>;
export type ConfigInput = z.input<typeof configSchema>;
