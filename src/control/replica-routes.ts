// Which replicas the global endpoint may send clients to, from the replica set: those
// whose record says Succeeded (a replica still Creating is not Ready; one Deleting is being
// drained), each at its endpoint and coordinates. A hosted endpoint reads its replica's
// own records; a standalone one asks the home replica through the peer API.
import { findRegion } from "../geo/regions.ts";
import { controlRepository } from "../metadata/metadata-store.ts";
import type { PeerClient } from "../replication/peer-client.ts";
import { type ReplicaRecord, replicaRecordsOf } from "./replica-set.ts";

export interface ReplicaRoute {
  region: string;
  url: string;
  coordinates: { latitude: number; longitude: number };
}

export function routesOf(records: readonly ReplicaRecord[]): ReplicaRoute[] {
  const routes: ReplicaRoute[] = [];
  for (const record of records) {
    if (record.state !== "Succeeded" || !record.endpoint) continue;
    const known = findRegion(record.region);
    const coordinates =
      record.latitude !== undefined && record.longitude !== undefined
        ? { latitude: record.latitude, longitude: record.longitude }
        : known
          ? { latitude: known.latitude, longitude: known.longitude }
          : { latitude: 0, longitude: 0 };
    routes.push({ region: record.region, url: record.endpoint, coordinates });
  }
  return routes;
}

/** The replica set as a peer holds it (its exported control records). */
export async function remoteReplicaRecords(peer: PeerClient): Promise<ReplicaRecord[]> {
  const exported = await peer.exportRepository(controlRepository);
  return replicaRecordsOf(exported.controls ?? []);
}
