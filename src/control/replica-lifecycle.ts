// The life of a replica, driven by the home replica: `create` records it (Creating) and has
// it provisioned, by the local supervisor when `meridian up` runs the registry or by the
// join flow on another machine; once the replica itself reports Ready its record becomes
// Succeeded. `delete` marks it Deleting; every other replica then drains it (follows its
// feed to the head and merges its whole state), and only then are its process stopped,
// its data deleted and its record removed. A restarted home replica resumes what it was doing.
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import { hashSecret } from "../auth/password-hash.ts";
import { allRegions, findRegion } from "../geo/regions.ts";
import { OciError } from "../oci/oci-error.ts";
import { PeerClient } from "../replication/peer-client.ts";
import type { PeerDirectory } from "./peer-directory.ts";
import type { ReplicaRecord, ReplicaSet } from "./replica-set.ts";
import { readReplicaStatus } from "./replica-status-reader.ts";
import { deprovision, provision, type SupervisorAddress } from "./supervisor-client.ts";

export const joinTokenKind = "join-token";
/** A join token is good for a day. */
const joinTokenTtlMs = 24 * 3600 * 1000;
/** How long each replica has to drain a deleted one. */
const drainTimeoutMs = 10 * 60 * 1000;
const tickMs = 500;

export interface CreateReplica {
  location: string;
  regionEndpointEnabled: boolean;
  latitude?: number | undefined;
  longitude?: number | undefined;
}

export interface ReplicaLifecycleOptions {
  self: string;
  replicaSet: ReplicaSet;
  directory: PeerDirectory;
  secret: string;
  supervisor: SupervisorAddress | undefined;
  log: Logger;
}

export class ReplicaLifecycle {
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private readonly draining = new Set<string>();
  private readonly drains = new Set<Promise<void>>();

  constructor(private readonly options: ReplicaLifecycleOptions) {}

  start(): void {
    this.timer = setInterval(() => {
      if (this.ticking) return;
      this.ticking = this.tick()
        .catch((error: unknown) => this.options.log.warn({ err: error }, "lifecycle check failed"))
        .finally(() => (this.ticking = undefined));
    }, tickMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.ticking;
    // Drains in flight end with the process; a restarted home replica resumes them.
  }

  /** Whether replicas made here get a process of their own on this machine. */
  get provisioner(): "local" | "join" {
    return this.options.supervisor ? "local" : "join";
  }

  /**
   * Records a new replica and has it provisioned. With the join flow, the answer carries
   * the one-time token the new machine joins with (only its hash is kept).
   */
  async create(
    request: CreateReplica,
  ): Promise<{ record: ReplicaRecord; joinToken?: string | undefined }> {
    const { location } = request;
    const known = findRegion(location);
    const custom = request.latitude !== undefined && request.longitude !== undefined;
    if (!known && !custom) {
      throw refused(
        `location '${location}' is not a known region; give latitude and longitude for a custom one, or use one of: ${allRegions()
          .map((r) => r.name)
          .join(", ")}`,
      );
    }
    const existing = await this.options.replicaSet.get(location);
    if (existing) {
      throw refused(
        `a replication already exists in location '${location}' (state ${existing.state}); a region holds one replica`,
        409,
      );
    }
    const base = {
      region: location,
      home: false,
      globalEndpointRouting: request.regionEndpointEnabled,
      state: "Creating" as const,
      provisioner: this.provisioner,
      ...(custom ? { latitude: request.latitude, longitude: request.longitude } : {}),
      createdAt: new Date().toISOString(),
    };
    if (this.options.supervisor) {
      const { endpoint } = await provision(this.options.supervisor, {
        region: location,
        latitude: request.latitude,
        longitude: request.longitude,
      }).catch((error: unknown) => {
        throw new OciError(
          "UNAVAILABLE",
          { reason: `could not start a replica in ${location}: ${(error as Error).message}` },
          { cause: error },
        );
      });
      const record: ReplicaRecord = { ...base, endpoint };
      await this.options.replicaSet.put(record);
      return { record };
    }
    const joinToken = randomBytes(24).toString("base64url");
    await this.options.replicaSet.control.put(joinTokenKind, location, {
      tokenHash: await hashSecret(joinToken),
      expiresAt: new Date(Date.now() + joinTokenTtlMs).toISOString(),
    });
    const record: ReplicaRecord = base;
    await this.options.replicaSet.put(record);
    return { record, joinToken };
  }

  /** Marks a replica Deleting; the drain and the removal follow in the background. */
  async remove(region: string): Promise<ReplicaRecord> {
    const record = await this.options.replicaSet.get(region);
    if (!record) throw new OciError("NAME_UNKNOWN", { replication: region }, { status: 404 });
    if (record.home) {
      throw refused(
        `${region} is the home replica: the home replica is deleted only with the registry`,
      );
    }
    if (record.state === "Deleting") return record;
    const deleting: ReplicaRecord = { ...record, state: "Deleting" };
    await this.options.replicaSet.put(deleting);
    return deleting;
  }

  /** Waits (a few seconds at most) until no other replica reports following `region`. */
  private async waitUnfollowed(region: string, others: ReplicaRecord[]): Promise<void> {
    const deadline = Date.now() + unfollowMs;
    for (const other of others) {
      if (!other.endpoint) continue;
      while (Date.now() < deadline) {
        const report = await readReplicaStatus(other.endpoint, 1_000).catch(() => undefined);
        if (!report?.peers.some((p) => p.region === region)) break;
        await new Promise((done) => setTimeout(done, 50));
      }
    }
  }

  private async tick(): Promise<void> {
    for (const record of await this.options.replicaSet.list()) {
      if (record.state === "Deleting" && !this.draining.has(record.region)) {
        this.draining.add(record.region);
        const drain = this.drainAndForget(record).finally(() => {
          this.draining.delete(record.region);
          this.drains.delete(drain);
        });
        this.drains.add(drain);
      } else if (record.state === "Creating" && record.endpoint) {
        const report = await readReplicaStatus(record.endpoint, 2_000).catch(() => undefined);
        if (report?.status === "Ready") {
          await this.options.replicaSet.put({ ...record, state: "Succeeded" });
          this.options.log.info({ region: record.region }, "replica is ready");
        }
      }
    }
  }

  /**
   * Every other replica first takes what only the deleted one holds; then the record goes
   * (a tombstone: every replica stops following it) and then its process and data.
   */
  private async drainAndForget(record: ReplicaRecord): Promise<void> {
    const { log, replicaSet, directory } = this.options;
    const others = (await replicaSet.list()).filter(
      (r) => r.region !== record.region && r.state !== "Deleting",
    );
    log.info({ region: record.region }, "draining a replica before it is deleted");
    await Promise.all(
      others.map(async (other) => {
        const url = directory.urlOf(other.region) ?? other.endpoint;
        if (!url) return;
        const client = new PeerClient({ region: other.region, url }, this.options.secret);
        try {
          await client.drained(record.region, drainTimeoutMs);
        } catch (error) {
          // A replica that cannot drain now gets the records later from the others by
          // anti-entropy; the deletion does not wait for it.
          log.warn({ region: other.region, err: error }, "a replica could not drain");
        } finally {
          client.close();
        }
      }),
    );
    // Everyone stops following it before it stops answering (no one logs its end).
    await replicaSet.put({ ...record, drained: true });
    await this.waitUnfollowed(record.region, others);
    // The process and its data go before the record: once the replica is absent from
    // the listing, nothing of it is left.
    if (record.provisioner === "local" && this.options.supervisor) {
      await deprovision(this.options.supervisor, record.region).catch((error: unknown) =>
        log.warn({ region: record.region, err: error }, "could not stop the deleted replica"),
      );
    }
    await replicaSet.remove(record.region);
    await replicaSet.control.delete(joinTokenKind, record.region);
    log.info({ region: record.region }, "replica deleted");
  }
}

/** How long the others get to drop a drained replica's follower before its process stops. */
const unfollowMs = 5_000;

function refused(reason: string, status = 400): OciError {
  return new OciError("UNSUPPORTED", { reason }, { status });
}
