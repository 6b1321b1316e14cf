// The benchmark's scenarios in the order they run against each registry (the memory-heavy
// concurrent-upload scenario last).
import type { Scenario } from "./figures.ts";
import {
  blobHead,
  crossRepoMount,
  manifestGet,
  smallImagePush,
  tagListing,
} from "./scenarios-api.ts";
import { pull, pushChunked, pushMonolithic, uploadMemory } from "./scenarios-blobs.ts";

export const scenarios: readonly Scenario[] = [
  pushMonolithic,
  pushChunked,
  pull,
  smallImagePush,
  manifestGet,
  blobHead,
  tagListing,
  crossRepoMount,
  uploadMemory,
];
