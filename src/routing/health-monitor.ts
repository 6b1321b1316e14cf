// Knows which replicas can take requests: active probes of every replica's status
// endpoint (which also says whether its routing is enabled), plus passive failure counts
// from the requests the global endpoint forwards. A replica is skipped after
// `failureThreshold` consecutive failures of either kind and readmitted by the next
// successful probe.
import { request } from "node:http";
import type { RoutableReplica } from "./replica-ranking.ts";

export interface HealthMonitorOptions {
  replicas: Omit<RoutableReplica, "healthy" | "routingEnabled" | "rttMs">[];
  probeIntervalMs: number;
  probeTimeoutMs: number;
  failureThreshold: number;
}

interface ReplicaHealth extends RoutableReplica {
  failures: number;
}

export class HealthMonitor {
  private health: ReplicaHealth[];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: HealthMonitorOptions) {
    this.health = options.replicas.map((replica) => ({
      ...replica,
      healthy: true,
      routingEnabled: true,
      failures: 0,
    }));
  }

  /** Probes once right away, then every interval. */
  async start(): Promise<void> {
    await this.probeAll();
    this.timer = setInterval(() => void this.probeAll(), this.options.probeIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  replicas(): readonly RoutableReplica[] {
    return this.health;
  }

  /**
   * Routes to exactly these replicas from now on (the replica set changed): a known one
   * keeps its health; a new one is taken once its first probe answers.
   */
  async setReplicas(replicas: HealthMonitorOptions["replicas"]): Promise<void> {
    const added: ReplicaHealth[] = [];
    this.health = replicas.map((replica) => {
      const known = this.health.find((h) => h.region === replica.region && h.url === replica.url);
      if (known) return known;
      const fresh = { ...replica, healthy: false, routingEnabled: true, failures: 0 };
      added.push(fresh);
      return fresh;
    });
    await Promise.all(added.map((replica) => this.probe(replica)));
  }

  /** A forwarded request could not reach the replica. */
  reportFailure(region: string): void {
    const replica = this.health.find((r) => r.region === region);
    if (!replica) return;
    replica.failures += 1;
    if (replica.failures >= this.options.failureThreshold) replica.healthy = false;
  }

  reportSuccess(region: string): void {
    const replica = this.health.find((r) => r.region === region);
    if (replica) replica.failures = 0;
  }

  private async probeAll(): Promise<void> {
    await Promise.all(this.health.map((replica) => this.probe(replica)));
  }

  private async probe(replica: ReplicaHealth): Promise<void> {
    const started = performance.now();
    try {
      const status = await getJson(`${replica.url}/_meridian/status`, this.options.probeTimeoutMs);
      const rtt = performance.now() - started;
      replica.rttMs = replica.rttMs === undefined ? rtt : replica.rttMs * 0.7 + rtt * 0.3;
      replica.routingEnabled = status.globalEndpointRouting !== false;
      replica.failures = 0;
      replica.healthy = true;
    } catch {
      this.reportFailure(replica.region);
    }
  }
}

function getJson(url: string, timeoutMs: number): Promise<{ globalEndpointRouting?: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "GET", timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => {
        if (res.statusCode !== 200) {
          reject(new Error(`status ${res.statusCode}`));
          return;
        }
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")));
        } catch (error) {
          reject(error);
        }
      });
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error("probe timed out")));
    req.on("error", reject);
    req.end();
  });
}
