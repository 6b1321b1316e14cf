// The replica set as control-plane data: one record of kind "replica" per region, written
// by the home replica and replicated to every replica by the feeds, so that each replica
// learns its peers (and where the home replica is) from the registry itself rather than
// from a file shared by all. The topology file seeds it on the home replica's first start.
import { z } from "zod";
import { byCodeUnits } from "../code-unit-order.ts";
import type { Config } from "../config/config-schema.ts";
import { replicaEndpoint } from "../config/load-config.ts";
import type { ControlRecords } from "../registry/control-records.ts";

export const replicaKind = "replica";

/** Where a replica is in its life; the live status (Syncing, Ready) is computed apart. */
export type ProvisioningState = "Creating" | "Succeeded" | "Deleting";

const replicaRecordValue = z.object({
  /** Unknown until a replica provisioned by the join flow has joined. */
  endpoint: z.string().url().optional(),
  home: z.boolean(),
  globalEndpointRouting: z.boolean(),
  state: z.enum(["Creating", "Succeeded", "Deleting"]),
  /** Who runs the process: `meridian up` on this machine, or an operator (join flow). */
  provisioner: z.enum(["local", "join"]).default("local"),
  /** Deleting, and every other replica holds what it held: nobody follows it any more. */
  drained: z.boolean().optional(),
  latitude: z.number().optional(),
  longitude: z.number().optional(),
  createdAt: z.string(),
});

export type ReplicaRecordValue = z.infer<typeof replicaRecordValue>;
export interface ReplicaRecord extends ReplicaRecordValue {
  region: string;
}

/**
 * The live replica records among control records (of any kind), home first, then by
 * region. A record this version cannot read is left out rather than misread.
 */
export function replicaRecordsOf(
  records: readonly { kind: string; name: string; value: string | null }[],
): ReplicaRecord[] {
  const replicas: ReplicaRecord[] = [];
  for (const record of records) {
    if (record.kind !== replicaKind || record.value === null) continue;
    const parsed = replicaRecordValue.safeParse(JSON.parse(record.value));
    if (parsed.success) replicas.push({ region: record.name, ...parsed.data });
  }
  return replicas.sort(
    (a, b) => Number(b.home) - Number(a.home) || byCodeUnits(a.region, b.region),
  );
}

export class ReplicaSet {
  constructor(readonly control: ControlRecords) {}

  /** The live replicas, home first, then by region. */
  async list(): Promise<ReplicaRecord[]> {
    return replicaRecordsOf(await this.control.list(replicaKind));
  }

  /** Regions whose replica was deleted (their tombstones). */
  async removed(): Promise<Set<string>> {
    const registers = await this.control.registers(replicaKind);
    return new Set(registers.filter((r) => r.value === null).map((r) => r.name));
  }

  async get(region: string): Promise<ReplicaRecord | undefined> {
    return (await this.list()).find((r) => r.region === region);
  }

  async put(record: ReplicaRecord): Promise<void> {
    const { region, ...value } = record;
    await this.control.put(replicaKind, region, value);
  }

  /** Forgets a replica: a tombstone that replicates, so that every peer stops following it. */
  remove(region: string): Promise<boolean> {
    return this.control.delete(replicaKind, region);
  }

  /**
   * On the home replica: writes a record for every replica of the topology file that has
   * never had one. A replica deleted since keeps its tombstone and is not brought back.
   */
  async seed(config: Config, now: Date = new Date()): Promise<number> {
    const known = new Set((await this.control.registers(replicaKind)).map((r) => r.name));
    let seeded = 0;
    for (const entry of config.replicas ?? []) {
      if (known.has(entry.region)) continue;
      await this.put({
        region: entry.region,
        endpoint: replicaEndpoint(entry),
        home: entry.home,
        globalEndpointRouting: entry.globalEndpointRouting,
        state: "Succeeded",
        provisioner: "local",
        ...(entry.latitude !== undefined ? { latitude: entry.latitude } : {}),
        ...(entry.longitude !== undefined ? { longitude: entry.longitude } : {}),
        createdAt: now.toISOString(),
      });
      seeded += 1;
    }
    return seeded;
  }

  /** Calls `listener` whenever a replica record changes here (local write or replicated). */
  onChange(listener: () => void): () => void {
    return this.control.onChange((kinds) => {
      if (kinds.has(replicaKind)) listener();
    });
  }
}
