// GET /metrics of a replica running as several workers: the counters of every worker,
// merged by the primary (prom-client's cluster aggregation: sums, or the aggregator a
// metric names), so that one scrape sees the whole replica.
import { AggregatorRegistry, type Registry } from "prom-client";
import type { ApiExtension } from "../api/api-server.ts";
import { OciError } from "../oci/oci-error.ts";
import { clusterMetrics } from "./worker-messages.ts";

/** In every worker: answers the primary's requests with this registry's metrics. */
export function shareMetricsWithPrimary(metrics: Registry): void {
  // Constructing one in a worker installs its answer to the primary's requests.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([metrics]);
}

export function createClusterMetricsEndpoint(): ApiExtension {
  return {
    prefix: "/metrics",
    async handle(_req, res) {
      let merged: { text: string; contentType: string };
      try {
        merged = await clusterMetrics();
      } catch (error) {
        throw new OciError("UNAVAILABLE", { reason: (error as Error).message }, { cause: error });
      }
      const body = Buffer.from(merged.text);
      res.writeHead(200, {
        "Content-Type": merged.contentType,
        "Content-Length": String(body.length),
      });
      res.end(body);
    },
  };
}
