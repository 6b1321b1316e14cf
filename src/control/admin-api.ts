// The admin API for the control plane's users and tokens, on every replica (admin role):
//
//   GET    /_meridian/admin/users             [{name, admin, permissions, fingerprint}]
//   PUT    /_meridian/admin/users/<name>      {password | passwordHash, admin?, permissions?}
//                                             -> the user
//   DELETE /_meridian/admin/users/<name>      204
//   GET    /_meridian/admin/tokens            [{name, permissions, fingerprint}]
//   PUT    /_meridian/admin/tokens/<name>     {permissions, secretHash?} -> the token with
//                                             its secret (once; none when a hash is given)
//   DELETE /_meridian/admin/tokens/<name>     204
//
// `permissions` are grants as in the configuration file: [{repositories, actions}].
// Reads are answered by any replica. Writes are made by the home replica (a write sent to
// another replica is forwarded there), stored as control records and replicated to every
// replica by the feeds; while the home replica cannot be reached they fail with 503 naming
// it, and pushes and pulls go on everywhere. Only scrypt hashes are stored.
import { createHash, randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import type { ApiExtension } from "../api/api-server.ts";
import { readBody } from "../api/request-body.ts";
import { sendEmpty, sendJson } from "../api/responses.ts";
import type { Authorizer } from "../auth/authorizer.ts";
import { hashSecret, isSecretHash } from "../auth/password-hash.ts";
import { grant } from "../config/config-schema.ts";
import { OciError } from "../oci/oci-error.ts";
import type { ControlRecords } from "../registry/control-records.ts";
import { isControlName } from "../replication/wire-format.ts";
import { forwardToHome, type HomeReplica } from "./home-forwarding.ts";
import { parseJsonBody } from "./json-body.ts";

export const adminApiPrefix = "/_meridian/admin/";

/** A hash made by `meridian user|token add` (or `hash-password`): what `apply` sends. */
const scryptHash = z.string().refine(isSecretHash, "must be a scrypt hash");
const userBody = z
  .object({
    password: z.string().min(8, "at least 8 characters").optional(),
    passwordHash: scryptHash.optional(),
    admin: z.boolean().default(false),
    permissions: z.array(grant).default([]),
  })
  .strict()
  .refine((b) => (b.password === undefined) !== (b.passwordHash === undefined), {
    message: "give password or passwordHash, one of them",
    path: ["password"],
  });
const tokenBody = z
  .object({ permissions: z.array(grant).min(1), secretHash: scryptHash.optional() })
  .strict();

/**
 * Tells whether two records hold the same hash without showing it: `meridian apply`
 * compares the file's hash with the registry's this way.
 */
export function fingerprintOf(hash: unknown): string | undefined {
  return typeof hash === "string"
    ? createHash("sha256").update(hash).digest("hex").slice(0, 16)
    : undefined;
}

export interface AdminApiOptions {
  control: ControlRecords;
  authorizer: Authorizer;
  /** Where writes are made: this replica (undefined) or the home replica to forward to. */
  home: () => HomeReplica | undefined;
}

export function createAdminApi(options: AdminApiOptions): ApiExtension {
  return {
    prefix: adminApiPrefix,
    async handle(req, res, ctx) {
      await options.authorizer.requireAdmin(req, ctx.client);
      const [collection, name, ...rest] = ctx.path.slice(adminApiPrefix.length).split("/");
      const kind = collection === "users" ? "user" : collection === "tokens" ? "token" : undefined;
      if (!kind || rest.length > 0) {
        throw new OciError("NAME_UNKNOWN", { path: ctx.path.slice(0, 200) }, { status: 404 });
      }
      if (name === undefined || name === "") {
        if (req.method !== "GET") throw new OciError("UNSUPPORTED", { method: req.method });
        sendJson(res, 200, await list(options.control, kind));
        return;
      }
      const decoded = decodeURIComponent(name);
      if (!isControlName(decoded) || decoded.length > 64) {
        throw new OciError(
          "UNSUPPORTED",
          { reason: "a name has 1-64 letters, digits and ._@- only", name: decoded.slice(0, 80) },
          { status: 400 },
        );
      }
      if (req.method !== "PUT" && req.method !== "DELETE") {
        throw new OciError("UNSUPPORTED", { method: req.method });
      }
      const home = options.home();
      if (home) {
        await forwardToHome(home, req, res);
        return;
      }
      if (req.method === "DELETE") {
        if (!(await options.control.delete(kind, decoded))) {
          throw new OciError("NAME_UNKNOWN", { [kind]: decoded }, { status: 404 });
        }
        sendEmpty(res, 204);
        return;
      }
      await (kind === "user"
        ? putUser(options.control, decoded, req, res)
        : putToken(options.control, decoded, req, res));
    },
  };
}

async function list(control: ControlRecords, kind: "user" | "token") {
  return (await control.list(kind)).map((record) => {
    const value = JSON.parse(record.value ?? "{}") as Record<string, unknown>;
    return kind === "user"
      ? {
          name: record.name,
          admin: value.admin ?? false,
          permissions: value.permissions ?? [],
          fingerprint: fingerprintOf(value.passwordHash),
        }
      : {
          name: record.name,
          permissions: value.permissions ?? [],
          fingerprint: fingerprintOf(value.secretHash),
        };
  });
}

async function putUser(
  control: ControlRecords,
  name: string,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const body = parseJsonBody(userBody, await readBody(req, 64 * 1024));
  await control.put("user", name, {
    passwordHash: body.passwordHash ?? (await hashSecret(body.password ?? "")),
    admin: body.admin,
    permissions: body.permissions,
  });
  sendJson(res, 200, { name, admin: body.admin, permissions: body.permissions });
}

async function putToken(
  control: ControlRecords,
  name: string,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const body = parseJsonBody(tokenBody, await readBody(req, 64 * 1024));
  if (body.secretHash) {
    // The token's secret was made elsewhere (a desired-state file holds its hash).
    await control.put("token", name, {
      secretHash: body.secretHash,
      permissions: body.permissions,
    });
    sendJson(res, 200, { name, permissions: body.permissions });
    return;
  }
  const secret = randomBytes(24).toString("base64url");
  await control.put("token", name, {
    secretHash: await hashSecret(secret),
    permissions: body.permissions,
  });
  // The secret is shown here once; only its hash is kept.
  sendJson(res, 201, { name, permissions: body.permissions, secret });
}
