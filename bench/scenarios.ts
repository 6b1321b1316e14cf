// The benchmark's scenarios in the order they run against each registry (the memory-heavy
// concurrent-upload scenario last), then the replication scenarios and the global endpoint
// scenario and the scale-out figures (Meridian only, each on its own cluster), and the
// machine's limits they are read against.
import type { Scenario } from "./figures.ts";
import {
  blobHead,
  crossRepoMount,
  manifestGet,
  smallImagePush,
  smallImagePushSessions,
  tagListing,
} from "./scenarios-api.ts";
import { pull, pushChunked, pushMonolithic, uploadMemory } from "./scenarios-blobs.ts";
import { globalEndpointScenario } from "./scenarios-global.ts";
import { machineLimits } from "./scenarios-limits.ts";
import {
  type ReplicationScenario,
  replicationBytes,
  replicationIdle,
  replicationLag,
  replicationThroughput,
} from "./scenarios-replication.ts";
import { scaleOut } from "./scenarios-scale.ts";

export const scenarios: readonly Scenario[] = [
  pushMonolithic,
  pushChunked,
  pull,
  smallImagePush,
  smallImagePushSessions,
  manifestGet,
  blobHead,
  tagListing,
  crossRepoMount,
  uploadMemory,
];

export const replicationScenarios: readonly ReplicationScenario[] = [
  replicationLag,
  replicationThroughput,
  replicationBytes,
  replicationIdle,
  globalEndpointScenario,
  scaleOut,
  machineLimits,
];
