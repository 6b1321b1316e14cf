// The configuration of one replica: its schema, defaults and the checks that run at
// start so that every bad value is reported with its path and a clear message.
import { z } from "zod";

const listenPattern = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]*):\d{1,5}$/;

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
export type ConfigInput = z.input<typeof configSchema>;
