// Orders the replicas a request may go to: healthy replicas whose routing is enabled,
// nearest first (great-circle distance from the client, or measured round trip in
// latency mode). Unhealthy or disabled replicas are never chosen.
import { byCodeUnits } from "../code-unit-order.ts";
import { distanceKm } from "../geo/regions.ts";
import type { Coordinates } from "./client-location.ts";

export interface RoutableReplica {
  region: string;
  url: string;
  coordinates: Coordinates;
  healthy: boolean;
  routingEnabled: boolean;
  /** Smoothed round trip of health probes, in ms. */
  rttMs?: number | undefined;
}

export type RankingMode = "distance" | "latency";

export function rankReplicas(
  replicas: readonly RoutableReplica[],
  client: Coordinates,
  mode: RankingMode,
): RoutableReplica[] {
  const score = (replica: RoutableReplica) =>
    mode === "latency" && replica.rttMs !== undefined
      ? replica.rttMs
      : distanceKm(client, replica.coordinates);
  return replicas
    .filter((replica) => replica.healthy && replica.routingEnabled)
    .map((replica) => ({ replica, score: score(replica) }))
    .sort((a, b) => a.score - b.score || byCodeUnits(a.replica.region, b.replica.region))
    .map(({ replica }) => replica);
}
