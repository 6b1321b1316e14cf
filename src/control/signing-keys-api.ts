// The token signing keys in the admin API (admin role), never with their material:
//
//   GET  /_meridian/admin/signing-keys   [{kid, createdAt, current}]
//   POST /_meridian/admin/signing-keys   201 {kid}: a new key signs every new token; tokens
//                                        signed before stay valid until they expire
//
// A rotation is made by the home replica (forwarded there from any other) and replicates.
import type { ApiExtension } from "../api/api-server.ts";
import { sendJson } from "../api/responses.ts";
import type { Authorizer } from "../auth/authorizer.ts";
import type { SigningKeyring } from "../auth/signing-keyring.ts";
import { OciError } from "../oci/oci-error.ts";
import { forwardToHome, type HomeReplica } from "./home-forwarding.ts";

export const signingKeysPath = "/_meridian/admin/signing-keys";

export function createSigningKeysApi(options: {
  keyring: SigningKeyring;
  rotate: () => Promise<string>;
  authorizer: Authorizer;
  homeOf: () => HomeReplica | undefined;
}): ApiExtension {
  return {
    prefix: signingKeysPath,
    async handle(req, res, ctx) {
      await options.authorizer.requireAdmin(req, ctx.client);
      if (ctx.path !== signingKeysPath) {
        throw new OciError("NAME_UNKNOWN", { path: ctx.path.slice(0, 200) }, { status: 404 });
      }
      if (req.method === "GET") {
        sendJson(res, 200, options.keyring.list());
        return;
      }
      if (req.method !== "POST") throw new OciError("UNSUPPORTED", { method: req.method });
      const home = options.homeOf();
      if (home) {
        await forwardToHome(home, req, res);
        return;
      }
      sendJson(res, 201, { kid: await options.rotate() });
    },
  };
}
