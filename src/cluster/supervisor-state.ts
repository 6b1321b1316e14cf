// What the local supervisor keeps between runs of `meridian up`, beside the data folders:
// the replicas added with `replication create` (the topology file does not list them) and
// the file's replicas deleted with `replication delete` (not to be started again).
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { ReplicaEntry } from "../config/config-schema.ts";

export interface SupervisorStateData {
  added: ReplicaEntry[];
  removed: string[];
}

export class SupervisorState {
  private constructor(
    private readonly path: string,
    private data: SupervisorStateData,
  ) {}

  static async load(path: string): Promise<SupervisorState> {
    try {
      const parsed = JSON.parse(await readFile(path, "utf8")) as Partial<SupervisorStateData>;
      return new SupervisorState(path, {
        added: Array.isArray(parsed.added) ? parsed.added : [],
        removed: Array.isArray(parsed.removed) ? parsed.removed : [],
      });
    } catch {
      return new SupervisorState(path, { added: [], removed: [] });
    }
  }

  get added(): ReplicaEntry[] {
    return this.data.added;
  }

  get removed(): string[] {
    return this.data.removed;
  }

  async add(entry: ReplicaEntry): Promise<void> {
    this.data = {
      added: [...this.data.added.filter((e) => e.region !== entry.region), entry],
      removed: this.data.removed.filter((r) => r !== entry.region),
    };
    await this.save();
  }

  async remove(region: string, inFile: boolean): Promise<void> {
    this.data = {
      added: this.data.added.filter((e) => e.region !== region),
      removed: inFile ? [...new Set([...this.data.removed, region])] : this.data.removed,
    };
    await this.save();
  }

  private async save(): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    await writeFile(`${this.path}.tmp`, JSON.stringify(this.data, null, 2));
    await rename(`${this.path}.tmp`, this.path);
  }
}
