// The registry's settings in the admin API (admin role):
//
//   GET    /_meridian/admin/settings          [{name, value, source: registry|file, description}]
//   PUT    /_meridian/admin/settings/<name>   {value} -> the setting, in every replica at once
//   DELETE /_meridian/admin/settings/<name>   204: back to the configuration file's value
//
// Writes are made by the home replica (forwarded there from any other).
import { z } from "zod";
import type { ApiExtension } from "../api/api-server.ts";
import { readBody } from "../api/request-body.ts";
import { sendEmpty, sendJson } from "../api/responses.ts";
import type { Authorizer } from "../auth/authorizer.ts";
import { OciError } from "../oci/oci-error.ts";
import { forwardToHome, type HomeReplica } from "./home-forwarding.ts";
import { parseJsonBody } from "./json-body.ts";
import type { RegistrySettings } from "./registry-settings.ts";

export const settingsPrefix = "/_meridian/admin/settings";

const setBody = z.object({ value: z.unknown() }).strict();

export function createSettingsApi(options: {
  settings: RegistrySettings;
  authorizer: Authorizer;
  homeOf: () => HomeReplica | undefined;
}): ApiExtension {
  return {
    prefix: settingsPrefix,
    async handle(req, res, ctx) {
      await options.authorizer.requireAdmin(req, ctx.client);
      const rest = ctx.path.slice(settingsPrefix.length);
      if (rest === "" && req.method === "GET") {
        sendJson(res, 200, await options.settings.list());
        return;
      }
      const name = decodeURIComponent(rest.slice(1));
      if (
        !rest.startsWith("/") ||
        name === "" ||
        (req.method !== "PUT" && req.method !== "DELETE")
      ) {
        throw new OciError("UNSUPPORTED", { method: req.method, path: ctx.path.slice(0, 200) });
      }
      const home = options.homeOf();
      if (home) {
        await forwardToHome(home, req, res);
        return;
      }
      try {
        if (req.method === "DELETE") {
          await options.settings.reset(name);
          sendEmpty(res, 204);
          return;
        }
        const body = parseJsonBody(setBody, await readBody(req, 4096));
        await options.settings.set(name, body.value);
      } catch (error) {
        if (error instanceof OciError) throw error;
        throw new OciError("UNSUPPORTED", { reason: (error as Error).message }, { status: 400 });
      }
      const view = (await options.settings.list()).find((s) => s.name === name);
      sendJson(res, 200, view);
    },
  };
}
