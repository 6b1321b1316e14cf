// One delivery attempt: checks the receiver URL again (DNS resolved now, the address
// checked), connects to exactly the approved address (TLS still verifies the name), POSTs
// the event with the webhook's headers and, when it has a secret, X-Meridian-Signature
// (sha256=<hex HMAC-SHA256 of the body>), and reports status, latency and the first bytes
// of the answer. It never throws: every failure is an attempt without a status.
import { createHmac } from "node:crypto";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import type { LookupFunction } from "node:net";
import type { Attempt } from "./outbox-store.ts";
import { type ApprovedTarget, approveUrl } from "./url-guard.ts";
import type { Webhook } from "./webhook-record.ts";

export interface SendOptions {
  denyPrivateNetworks: boolean;
  timeoutMs: number;
  now?: () => number;
  /** Aborts the attempt (the replica is stopping). */
  signal?: AbortSignal;
}

/** How much of an answer the delivery log keeps. */
const excerptBytes = 512;

export function signatureOf(secret: string, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

export async function sendEvent(
  webhook: Webhook,
  event: { id: string; eventKey: string; action: string; payload: string },
  options: SendOptions,
): Promise<Attempt> {
  const now = options.now ?? Date.now;
  const at = now();
  const started = performance.now();
  const done = (status: number | null, excerpt: string): Attempt => ({
    at,
    status,
    latencyMs: Math.round(performance.now() - started),
    excerpt,
  });
  let target: ApprovedTarget;
  try {
    target = await approveUrl(webhook.uri, options.denyPrivateNetworks);
  } catch (error) {
    return done(null, `refused: ${(error as Error).message}`);
  }
  const headers: Record<string, string> = {
    ...webhook.headers,
    "Content-Type": "application/json",
    "User-Agent": "meridian-webhooks/1",
    "X-Meridian-Event-Id": event.id,
    "X-Meridian-Event-Key": event.eventKey,
    "X-Meridian-Event-Action": event.action,
  };
  if (webhook.secret) headers["X-Meridian-Signature"] = signatureOf(webhook.secret, event.payload);
  try {
    const answer = await post(target, event.payload, headers, options);
    return done(answer.status, answer.excerpt);
  } catch (error) {
    return done(null, describe(error));
  }
}

function post(
  target: ApprovedTarget,
  body: string,
  headers: Record<string, string>,
  options: SendOptions,
): Promise<{ status: number; excerpt: string }> {
  const { timeoutMs, signal } = options;
  // Connect only to the addresses approved above, whatever the name resolves to by now.
  const [first] = target.addresses;
  const pinned: LookupFunction = (_host, opts, callback) => {
    if ((opts as { all?: boolean }).all) {
      (callback as (e: null, a: { address: string; family: number }[]) => void)(
        null,
        target.addresses,
      );
    } else if (first) {
      callback(null, first.address, first.family);
    }
  };
  const send = target.url.protocol === "https:" ? httpsRequest : httpRequest;
  const payload = Buffer.from(body);
  return new Promise((resolve, reject) => {
    const outgoing = send(
      target.url,
      {
        method: "POST",
        headers: { ...headers, "Content-Length": String(payload.length) },
        lookup: pinned,
        agent: false,
        signal,
      },
      (answer: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let kept = 0;
        answer.on("data", (chunk: Buffer) => {
          if (kept < excerptBytes) {
            chunks.push(chunk.subarray(0, excerptBytes - kept));
            kept += Math.min(chunk.length, excerptBytes - kept);
          }
        });
        answer.on("end", () => {
          clearTimeout(deadline);
          resolve({
            status: answer.statusCode ?? 0,
            excerpt: Buffer.concat(chunks).toString("utf8"),
          });
        });
        answer.on("error", reject);
      },
    );
    const deadline = setTimeout(
      () => outgoing.destroy(new Error(`no answer in ${timeoutMs} ms`)),
      timeoutMs,
    );
    outgoing.on("error", (error) => {
      clearTimeout(deadline);
      reject(error);
    });
    outgoing.end(payload);
  });
}

function describe(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : String(error);
  return typeof code === "string" ? `${code}: ${message}` : message;
}
