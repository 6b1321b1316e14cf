// The import jobs of this replica: a request becomes a queued job at once (the caller gets
// its id), runs here (an import is a data write, like a push: it is not forwarded to the
// home replica), at most `maxRunning` at a time, and keeps going whether or not anyone
// polls it. Records are persisted (import-job-store.ts), and so is what an unfinished job
// runs with: a job queued or running when the replica stopped (or was killed) is queued
// again at the next start and carries on, skipping what it had already copied.
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { z } from "zod";
import type { ChangeRequest } from "../metadata/metadata-store.ts";
import { OciError } from "../oci/oci-error.ts";
import type { Registry } from "../registry/registry.ts";
import { emptyProgress, ImageImporter } from "./image-importer.ts";
import { failureReason } from "./import-failure.ts";
import { type ImportJobRecord, ImportJobStore, type ImportWork } from "./import-job-store.ts";
import { RequestSlots } from "./request-slots.ts";
import { SourceClient } from "./source-client.ts";
import {
  parsePlatform,
  parseSourceReference,
  parseTargetReference,
  platformText,
  sourceText,
} from "./source-reference.ts";

export const importRequest = z
  .object({
    source: z.string().min(1).max(1024),
    image: z.string().max(400).optional(),
    username: z.string().max(512).optional(),
    password: z.string().max(8192).optional(),
    force: z.boolean().default(false),
    platform: z.string().max(200).optional(),
    allPlatforms: z.boolean().optional(),
    withReferrers: z.boolean().default(false),
    sourceInsecure: z.boolean().default(false),
  })
  .strict();

export type ImportRequest = z.input<typeof importRequest>;

export interface ImportJobsOptions {
  registry: Registry;
  dataDir: string;
  log: Logger;
  /** This replica's region, named in every job record. */
  region?: string | undefined;
  /** Jobs running at once (default 2); the rest wait in order. */
  maxRunning?: number;
  /** Requests in flight per source registry, across jobs (default 4). */
  requestsPerSource?: number;
  /** Records kept (default 100). */
  keep?: number;
  /** How source clients wait before retrying (tests inject one). */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

interface Job {
  record: ImportJobRecord;
  /** What the run needs (absent once the job ended); kept on disk until then. */
  work?: ImportWork | undefined;
  aborter: AbortController;
  dirty: boolean;
}

const flushIntervalMs = 1_000;

export class ImportJobs {
  private readonly jobs = new Map<string, Job>();
  private readonly queue: Job[] = [];
  private readonly running = new Set<Promise<void>>();
  private readonly slots: RequestSlots;
  private readonly timer: NodeJS.Timeout;
  private stopped = false;

  private constructor(
    private readonly options: ImportJobsOptions,
    private readonly store: ImportJobStore,
    records: ImportJobRecord[],
  ) {
    this.slots = new RequestSlots(options.requestsPerSource ?? 4);
    for (const record of records.reverse()) {
      this.jobs.set(record.id, { record, aborter: new AbortController(), dirty: false });
    }
    // Progress is written at most once a second; state changes at once.
    this.timer = setInterval(() => this.flushProgress(), flushIntervalMs);
    this.timer.unref();
  }

  static async open(options: ImportJobsOptions): Promise<ImportJobs> {
    const store = new ImportJobStore(options.dataDir);
    const records = await store.open(options.keep ?? 100);
    const resumed = new Map<string, ImportWork>();
    for (const record of records) {
      if (record.state !== "queued" && record.state !== "running") continue;
      const work = await store.loadWork(record.id);
      if (work) {
        // Queued again from the start: the copy skips every blob and manifest it has.
        Object.assign(record, { state: "queued", startedAt: undefined, reason: undefined });
        record.progress = emptyProgress();
        resumed.set(record.id, work);
      } else {
        record.state = "failed";
        record.finishedAt = new Date().toISOString();
        record.progress.active = [];
        record.reason =
          "interrupted: the replica stopped before the import finished; run it again (what was copied is kept and skipped)";
      }
      await store.save(record);
    }
    const jobs = new ImportJobs(options, store, records);
    jobs.resume(resumed);
    return jobs;
  }

  /** Queues the unfinished jobs of the last run again, oldest first. */
  private resume(works: Map<string, ImportWork>): void {
    for (const job of [...this.jobs.values()]) {
      const work = works.get(job.record.id);
      if (!work) continue;
      job.work = work;
      this.queue.push(job);
      this.options.log.info({ importId: job.record.id, image: job.record.image }, "import resumed");
    }
    this.pump();
  }

  /**
   * Validates a request and queues it; throws a 400 OciError for bad input. `origin`: the
   * request that asked for the import, which the imported image's pushes name.
   */
  async submit(body: unknown, origin?: ChangeRequest): Promise<ImportJobRecord> {
    if (this.stopped) throw new OciError("UNAVAILABLE", { reason: "the replica is stopping" });
    const parsed = importRequest.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw badRequest(`${issue?.path.join(".") || "body"}: ${issue?.message ?? "invalid"}`);
    }
    const request = parsed.data;
    if (request.platform !== undefined && request.allPlatforms === true) {
      throw badRequest("platform and allPlatforms exclude each other");
    }
    if ((request.username === undefined) !== (request.password === undefined)) {
      throw badRequest("username and password go together");
    }
    const source = parseSourceReference(request.source);
    const target = parseTargetReference(request.image, source);
    const platform = request.platform === undefined ? undefined : parsePlatform(request.platform);
    const record: ImportJobRecord = {
      id: randomUUID(),
      state: "queued",
      source: sourceText(source),
      image: target.tag ? `${target.repository}:${target.tag}` : target.repository,
      region: this.options.region,
      platform: platform ? platformText(platform) : undefined,
      withReferrers: request.withReferrers,
      force: request.force,
      createdAt: new Date().toISOString(),
      progress: emptyProgress(),
    };
    const job: Job = {
      record,
      work: {
        spec: {
          source,
          target,
          platform,
          withReferrers: request.withReferrers,
          force: request.force,
          request: origin,
        },
        credentials:
          request.username !== undefined && request.password !== undefined
            ? { username: request.username, password: request.password }
            : undefined,
        insecure: request.sourceInsecure,
      },
      aborter: new AbortController(),
      dirty: false,
    };
    this.jobs.set(record.id, job);
    this.trim();
    await this.store.save(record);
    if (job.work) await this.store.saveWork(record.id, job.work);
    // The answer says what was accepted: a job that starts at once is still "queued" in it.
    const accepted = view(record);
    this.queue.push(job);
    this.pump();
    return accepted;
  }

  get(id: string): ImportJobRecord | undefined {
    const job = this.jobs.get(id);
    return job ? view(job.record) : undefined;
  }

  /** Newest first. */
  list(): ImportJobRecord[] {
    return [...this.jobs.values()].map((job) => view(job.record)).reverse();
  }

  /**
   * Aborts what runs and waits for the records to land. Unfinished jobs keep their state
   * and what they run with: the next start carries them on.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.queue.splice(0);
    for (const job of this.jobs.values()) job.aborter.abort(new Error("the replica stopped"));
    await Promise.all(this.running);
    await this.store.flush();
  }

  private pump(): void {
    const max = this.options.maxRunning ?? 2;
    while (!this.stopped && this.running.size < max && this.queue.length > 0) {
      const job = this.queue.shift() as Job;
      const run = this.run(job).finally(() => {
        this.running.delete(run);
        this.pump();
      });
      this.running.add(run);
    }
  }

  private async run(job: Job): Promise<void> {
    const { record, work } = job;
    if (!work) return;
    const { spec } = work;
    const log = this.options.log.child({ importId: record.id });
    record.state = "running";
    record.startedAt = new Date().toISOString();
    await this.store
      .save(record)
      .catch((error: unknown) => log.warn({ err: error }, "could not save an import job"));
    log.info({ source: record.source, image: record.image }, "import started");
    const client = new SourceClient({
      source: spec.source,
      credentials: work.credentials,
      insecure: work.insecure,
      slots: this.slots,
      signal: job.aborter.signal,
      sleep: this.options.sleep,
      log,
    });
    const importer = new ImageImporter({
      registry: this.options.registry,
      client,
      spec,
      signal: job.aborter.signal,
      onProgress: (progress) => {
        record.progress = progress;
        job.dirty = true;
      },
    });
    try {
      const result = await importer.run();
      record.digest = result.digest;
      this.finish(job, "succeeded");
      const { bytesTransferred, blobsSkipped } = importer.progress;
      log.info(
        { image: record.image, digest: result.digest, bytesTransferred, blobsSkipped },
        "import succeeded",
      );
    } catch (error) {
      // Stopped: the job stays unfinished, and the next start resumes it.
      if (this.stopped) return;
      const reason = failureReason(error);
      this.finish(job, "failed", reason);
      log.warn({ image: record.image, reason }, "import failed");
    }
  }

  private finish(job: Job, state: "succeeded" | "failed", reason?: string): void {
    const { record } = job;
    record.state = state;
    record.reason = reason;
    record.finishedAt = new Date().toISOString();
    record.progress = { ...record.progress, active: [] };
    job.work = undefined;
    job.dirty = false;
    const saved = this.store.save(record).then(() => this.store.removeWork(record.id));
    void saved.catch((error: unknown) =>
      this.options.log.warn({ err: error, importId: record.id }, "could not save an import job"),
    );
  }

  private flushProgress(): void {
    for (const job of this.jobs.values()) {
      if (!job.dirty || job.record.state !== "running") continue;
      job.dirty = false;
      void this.store.save(job.record).catch(() => undefined);
    }
  }

  /** Keeps the newest `keep` records, in memory and on disk (finished ones go first). */
  private trim(): void {
    const keep = this.options.keep ?? 100;
    for (const [id, job] of this.jobs) {
      if (this.jobs.size <= keep) break;
      if (job.record.state === "queued" || job.record.state === "running") continue;
      this.jobs.delete(id);
      void this.store.remove(id).catch(() => undefined);
    }
  }
}

/** A copy of the record to hand out (never the credentials: they are not in it). */
function view(record: ImportJobRecord): ImportJobRecord {
  return structuredClone(record);
}

function badRequest(reason: string): OciError {
  return new OciError("UNSUPPORTED", { reason }, { status: 400 });
}
