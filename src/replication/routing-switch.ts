// Whether the global endpoint may route requests to this replica: on by default (or as
// the topology entry says), switched at run time by the admin API for maintenance, and
// kept in the data folder so that it survives a restart. The replica keeps replicating
// either way.
import { readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";

export class RoutingSwitch {
  private constructor(
    private readonly path: string,
    private enabled: boolean,
  ) {}

  static async open(dataDir: string, initial: boolean): Promise<RoutingSwitch> {
    const path = join(dataDir, "routing.json");
    try {
      const saved = JSON.parse(await readFile(path, "utf8")) as { globalEndpointRouting?: unknown };
      if (typeof saved.globalEndpointRouting === "boolean")
        return new RoutingSwitch(path, saved.globalEndpointRouting);
    } catch {
      // Nothing saved yet: the configured value holds.
    }
    return new RoutingSwitch(path, initial);
  }

  get globalEndpointRouting(): boolean {
    return this.enabled;
  }

  async set(enabled: boolean): Promise<void> {
    await writeFile(`${this.path}.tmp`, JSON.stringify({ globalEndpointRouting: enabled }));
    await rename(`${this.path}.tmp`, this.path);
    this.enabled = enabled;
  }
}
