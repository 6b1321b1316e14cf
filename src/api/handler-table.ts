// Which handler serves each (route, method) pair of the route table.
import { deleteBlob, getBlob, headBlob } from "./handlers/blob-handlers.ts";
import { getBase, getCatalog, getReferrers, getTags } from "./handlers/listing-handlers.ts";
import { deleteManifest, getManifest, putManifest } from "./handlers/manifest-handlers.ts";
import {
  deleteUpload,
  getUploadStatus,
  patchUpload,
  putUpload,
  startUpload,
} from "./handlers/upload-handlers.ts";
import type { Handler } from "./request-context.ts";
import type { RouteName } from "./routes.ts";

export const handlerTable: Record<RouteName, Partial<Record<string, Handler>>> = {
  base: { GET: getBase, HEAD: getBase },
  catalog: { GET: getCatalog },
  tags: { GET: getTags },
  manifest: { GET: getManifest, HEAD: getManifest, PUT: putManifest, DELETE: deleteManifest },
  uploadStart: { POST: startUpload },
  upload: { GET: getUploadStatus, PATCH: patchUpload, PUT: putUpload, DELETE: deleteUpload },
  blob: { GET: getBlob, HEAD: headBlob, DELETE: deleteBlob },
  referrers: { GET: getReferrers },
};
