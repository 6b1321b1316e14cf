// Keeps import job records in the replica's data folder (`imports/<id>.json`, each written
// to a temporary file and renamed into place), so that a job's outcome outlives the CLI
// that asked for it and a restart of the replica. Records never hold credentials. The
// newest `keep` records are kept; older ones are removed when the store opens.
//
// What an unfinished job needs to run again after a restart (its parsed request, and the
// source credentials it was given) is kept beside its record as `imports/<id>.work.json`,
// readable by the replica's user only, and removed as soon as the job ends: the password
// is on disk exactly as long as the job that needs it is unfinished.
import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { byCodeUnits } from "../code-unit-order.ts";
import type { ImportProgress, ImportSpec } from "./image-importer.ts";
import type { SourceCredentials } from "./source-auth.ts";

/** What a job runs with; kept until it ends. */
export interface ImportWork {
  spec: ImportSpec;
  credentials?: SourceCredentials | undefined;
  insecure: boolean;
}

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
      if (file.endsWith(".work.json")) continue;
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
    records.sort((a, b) => byCodeUnits(b.createdAt, a.createdAt));
    for (const old of records.splice(keep)) await this.remove(old.id);
    return records;
  }

  /** Writes the record atomically (after the job's previous write). */
  save(record: ImportJobRecord): Promise<void> {
    return this.write(record.id, `${record.id}.json`, `${JSON.stringify(record, null, 2)}\n`);
  }

  /** Writes what the job needs to run again, atomically, mode 0600. */
  saveWork(id: string, work: ImportWork): Promise<void> {
    return this.write(id, `${id}.work.json`, JSON.stringify(work), 0o600);
  }

  /** What an unfinished job was submitted with, or undefined (none kept, or unreadable). */
  async loadWork(id: string): Promise<ImportWork | undefined> {
    try {
      return JSON.parse(await readFile(join(this.dir, `${id}.work.json`), "utf8")) as ImportWork;
    } catch {
      return undefined;
    }
  }

  /** Forgets what a job ran with (after the job's pending writes). */
  removeWork(id: string): Promise<void> {
    const previous = this.writes.get(id) ?? Promise.resolve();
    return this.chain(
      id,
      previous.then(() => rm(join(this.dir, `${id}.work.json`), { force: true })),
    );
  }

  private write(id: string, file: string, text: string, mode?: number): Promise<void> {
    const previous = this.writes.get(id) ?? Promise.resolve();
    const next = previous.then(async () => {
      await mkdir(this.dir, { recursive: true });
      const tmp = join(this.dir, `${id}.${randomBytes(4).toString("hex")}.tmp`);
      await writeFile(tmp, text, mode === undefined ? {} : { mode });
      await rename(tmp, join(this.dir, file));
    });
    return this.chain(id, next);
  }

  /** Makes `next` the job's newest write, so later writes of the job wait for it. */
  private chain(id: string, next: Promise<void>): Promise<void> {
    const settled = next.catch(() => undefined);
    this.writes.set(id, settled);
    void settled.then(() => {
      if (this.writes.get(id) === settled) this.writes.delete(id);
    });
    return next;
  }

  async remove(id: string): Promise<void> {
    await rm(join(this.dir, `${id}.json`), { force: true });
    await rm(join(this.dir, `${id}.work.json`), { force: true });
  }

  /** Resolves once every write begun so far has landed. */
  async flush(): Promise<void> {
    await Promise.all(this.writes.values());
  }
}
