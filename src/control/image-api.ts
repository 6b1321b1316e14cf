// GET /_meridian/admin/image?repository=<name>&tag=<tag> (admin role): where a tag's
// current manifest is visible, pending or absent, region by region (see image-locator.ts).
// `meridian repository show <repo>:<tag>` prints it.
import type { ApiExtension } from "../api/api-server.ts";
import { sendJson } from "../api/responses.ts";
import type { Authorizer } from "../auth/authorizer.ts";
import { OciError } from "../oci/oci-error.ts";
import { parseRepositoryName, parseTag } from "../oci/reference.ts";
import { locateImage } from "./image-locator.ts";
import type { PeerDirectory } from "./peer-directory.ts";

export const imagePath = "/_meridian/admin/image";

export function createImageApi(options: {
  directory: PeerDirectory;
  authorizer: Authorizer;
  /** The replication credential the regions are asked with; none: one region, this one. */
  secret: string | undefined;
}): ApiExtension {
  return {
    prefix: imagePath,
    async handle(req, res, ctx) {
      await options.authorizer.requireAdmin(req, ctx.client);
      if (ctx.path !== imagePath || req.method !== "GET") {
        throw new OciError("UNSUPPORTED", { method: req.method });
      }
      const repository = parseRepositoryName(ctx.query.get("repository") ?? "");
      const tag = parseTag(ctx.query.get("tag") ?? "latest");
      if (!options.secret) {
        throw new OciError(
          "UNSUPPORTED",
          { reason: "this registry does not replicate: there is one region to look in" },
          { status: 400 },
        );
      }
      const location = await locateImage(options.directory, options.secret, repository, tag);
      if (!location) {
        throw new OciError(
          "MANIFEST_UNKNOWN",
          { reason: `no region has ${repository}:${tag}`, repository, tag },
          { status: 404 },
        );
      }
      sendJson(res, 200, location);
    },
  };
}
