// The regions the portal's map offers: the product's catalogue (src/geo/regions.ts) and
// any custom location a replica was made in, each with its coordinates when known and
// whether a replica can be created there, with the reason when it cannot. Which regions
// hold a replica comes from the replications list, read by the page beside this.
import type { ReplicaRecord } from "../control/replica-set.ts";
import { allRegions } from "../geo/regions.ts";

export interface RegionChoice {
  name: string;
  displayName: string;
  latitude?: number;
  longitude?: number;
  /** Whether `POST /_meridian/admin/replications {location: name}` can succeed. */
  available: boolean;
  /** Why not, when it cannot. */
  reason?: string;
}

export function regionChoices(
  replicas: readonly ReplicaRecord[],
  replicates: boolean,
): RegionChoice[] {
  const notReplicating = replicates
    ? undefined
    : "this registry does not replicate: set replication.secret to add replicas";
  const choices: RegionChoice[] = allRegions().map((region) => ({
    name: region.name,
    displayName: region.displayName,
    latitude: region.latitude,
    longitude: region.longitude,
    available: notReplicating === undefined,
    ...(notReplicating ? { reason: notReplicating } : {}),
  }));
  const known = new Set(choices.map((choice) => choice.name));
  for (const replica of replicas) {
    if (known.has(replica.region)) continue;
    const located = replica.latitude !== undefined && replica.longitude !== undefined;
    choices.push({
      name: replica.region,
      displayName: replica.region,
      ...(located ? { latitude: replica.latitude, longitude: replica.longitude } : {}),
      // A custom location is made once, with its coordinates; a region of that name can
      // hold no second replica.
      available: false,
      reason: located
        ? "a custom location, not in the region catalogue"
        : "a custom location without coordinates: it cannot be placed on the map",
    });
  }
  return choices;
}
