// Keeps import job records in the replica's data folder (`imports/<id>.json`, each written
// to a temporary file and renamed into place), so that a job's outcome outlives the CLI
// that asked for it and a restart of the replica. Records never hold credentials. The
// newest `keep` records are kept; older ones are removed when the store opens.
import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ImportProgress } from "./image-importer.ts";

export type ImportState = "queued" | "running" | "succeeded" | "failed";

/** What the admin API shows of a job. */
export interface ImportJobRecord {
  id: string;
  state: ImportState;
  source: string;
  image: string;
  /** The region of the replica that runs the job (polls through a global endpoint pin it). */
  region?: string | undefined;
  platform?: string | undefined;
  withReferrers: boolean;
  force: boolean;
  createdAt: string;
  startedAt?: string | undefined;
  finishedAt?: string | undefined;
  /** The digest the image (its tag) names, once known. */
  digest?: string | undefined;
  progress: ImportProgress;
  reason?: string | undefined;
}

const idPattern = /^[0-9a-f-]{36}$/;

export class ImportJobStore {
  private readonly dir: string;
  /** Writes per job in order, so that an older state never lands after a newer one. */
  private readonly writes = new Map<string, Promise<void>>();

  constructor(dataDir: string) {
    this.dir = join(dataDir, "imports");
  }

  /**
   * Every kept record, newest first; the surplus beyond `keep` is removed. The folder is
   * made by the first write: a replica that never imports has none.
   */
  async open(keep: number): Promise<ImportJobRecord[]> {
    const records: ImportJobRecord[] = [];
    const files = await readdir(this.dir).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return [];
      throw error;
    });
    for (const file of files) {
      const path = join(this.dir, file);
      if (!file.endsWith(".json") || !idPattern.test(file.slice(0, -5))) {
        // A temporary file left by a crash mid-write.
        if (file.endsWith(".tmp")) await rm(path, { force: true });
        continue;
      }
      try {
        records.push(JSON.parse(await readFile(path, "utf8")) as ImportJobRecord);
      } catch {
        await rm(path, { force: true });
      }
    }
    records.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
    for (const old of records.splice(keep)) await this.remove(old.id);
    return records;
  }

  /** Writes the record atomically (after the job's previous write). */
  save(record: ImportJobRecord): Promise<void> {
    const text = `${JSON.stringify(record, null, 2)}\n`;
    const previous = this.writes.get(record.id) ?? Promise.resolve();
    const next = previous.then(async () => {
      await mkdir(this.dir, { recursive: true });
      const tmp = join(this.dir, `${record.id}.${randomBytes(4).toString("hex")}.tmp`);
      await writeFile(tmp, text);
      await rename(tmp, join(this.dir, `${record.id}.json`));
    });
    const settled = next.catch(() => undefined);
    this.writes.set(record.id, settled);
    void settled.then(() => {
      if (this.writes.get(record.id) === settled) this.writes.delete(record.id);
    });
    return next;
  }

  async remove(id: string): Promise<void> {
    await rm(join(this.dir, `${id}.json`), { force: true });
  }

  /** Resolves once every write begun so far has landed. */
  async flush(): Promise<void> {
    await Promise.all(this.writes.values());
  }
}
