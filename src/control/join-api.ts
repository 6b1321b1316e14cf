// The join flow for replicas on other machines: `replication create` on a registry not
// run by `meridian up` records the replica (Creating, no endpoint yet) with a one-time
// join token, and the new machine runs `meridian serve --join <home> --join-token T`,
// which calls
//
//   POST /_meridian/join   {region, token, endpoint} -> {secret, signingKey?, home}
//
// The home replica checks the token (only its hash is kept), consumes it, records the
// replica's endpoint and hands over the peer credential and the token signing key; the
// new replica then bootstraps from the home replica and follows every peer. A request
// made to another replica is forwarded to the home replica.
import { z } from "zod";
import type { ApiExtension } from "../api/api-server.ts";
import { readBody } from "../api/request-body.ts";
import { sendJson } from "../api/responses.ts";
import { verifySecret } from "../auth/password-hash.ts";
import { OciError } from "../oci/oci-error.ts";
import { forwardToHome, type HomeReplica } from "./home-forwarding.ts";
import { parseJsonBody } from "./json-body.ts";
import { joinTokenKind } from "./replica-lifecycle.ts";
import type { ReplicaSet } from "./replica-set.ts";

export const joinPath = "/_meridian/join";

const joinBody = z
  .object({
    region: z.string().min(1).max(63),
    token: z.string().min(1).max(200),
    endpoint: z.string().url(),
  })
  .strict();

const tokenValue = z.object({ tokenHash: z.string(), expiresAt: z.string() });

/** What a joining replica receives. */
export interface JoinAnswer {
  secret: string;
  signingKey?: string | undefined;
  home: { region: string };
}

export interface JoinApiOptions {
  replicaSet: ReplicaSet;
  self: string;
  /** The peer credential and token signing key handed to the new replica. */
  secret: string | undefined;
  signingKey: string | undefined;
  homeOf: () => HomeReplica | undefined;
}

export function createJoinApi(options: JoinApiOptions): ApiExtension {
  return {
    prefix: joinPath,
    async handle(req, res, ctx) {
      if (ctx.path !== joinPath || req.method !== "POST") {
        throw new OciError("UNSUPPORTED", { method: req.method, path: ctx.path.slice(0, 100) });
      }
      const home = options.homeOf();
      if (home) {
        await forwardToHome(home, req, res);
        return;
      }
      const body = parseJsonBody(joinBody, await readBody(req, 4096));
      const refused = new OciError(
        "DENIED",
        { reason: `no valid join token for a replica in ${body.region}` },
        { status: 403 },
      );
      const stored = await options.replicaSet.control.get(joinTokenKind, body.region);
      const token = stored ? tokenValue.safeParse(JSON.parse(stored.value ?? "null")) : undefined;
      if (!token?.success || Date.parse(token.data.expiresAt) < Date.now()) throw refused;
      if (!(await verifySecret(body.token, token.data.tokenHash))) throw refused;
      const record = await options.replicaSet.get(body.region);
      if (record?.state !== "Creating" || !options.secret) throw refused;
      // One use: the token goes before the credential is handed over.
      await options.replicaSet.control.delete(joinTokenKind, body.region);
      await options.replicaSet.put({ ...record, endpoint: body.endpoint });
      const answer: JoinAnswer = {
        secret: options.secret,
        signingKey: options.signingKey,
        home: { region: options.self },
      };
      sendJson(res, 200, answer);
    },
  };
}
