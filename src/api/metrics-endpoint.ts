// GET /metrics: the replica's Prometheus metrics.
import type { Registry } from "prom-client";
import type { ApiExtension } from "./api-server.ts";

export function createMetricsEndpoint(metrics: Registry): ApiExtension {
  return {
    prefix: "/metrics",
    async handle(_req, res) {
      const body = Buffer.from(await metrics.metrics());
      res.writeHead(200, {
        "Content-Type": metrics.contentType,
        "Content-Length": String(body.length),
      });
      res.end(body);
    },
  };
}
