// Where an image is: for one tag, whether each region serves the tag's current manifest
// (the newest write of the tag anywhere), is still waiting for it (since when, and which
// of the manifest and its blobs it lacks), or does not have it. Each region is asked
// through the peer API, which answers from that region's own state and never reads
// through to others, so "visible" means a pull there is served locally.

import type { Digest } from "../oci/digest.ts";
import { parseManifest } from "../oci/manifest.ts";
import { parseStamp } from "../registry/hybrid-clock.ts";
import { PeerClient } from "../replication/peer-client.ts";
import type { PeerDirectory } from "./peer-directory.ts";

export type ImageState = "visible" | "pending" | "absent";

export interface RegionImage {
  region: string;
  state: ImageState;
  /** The manifest the region's tag names, when it has the tag. */
  digest?: string;
  /** Visible: when the tag was written; pending: since when the region waits. */
  since?: string;
  /** Pending: what the region still lacks of the current manifest. */
  missing?: { manifest: boolean; blobs: string[] };
  /** Absent: why, when it is not simply that the tag is deleted. */
  reason?: string;
}

export interface ImageLocation {
  repository: string;
  tag: string;
  /** The current manifest: the newest write of the tag in any region. */
  digest: string;
  regions: RegionImage[];
}

const askTimeoutMs = 3_000;

type Answer =
  | {
      region: string;
      peer: PeerClient;
      found: Awaited<ReturnType<PeerClient["manifestByReference"]>>;
    }
  | { region: string; peer: PeerClient; error: string };

/** Undefined when no region knows the tag. */
export async function locateImage(
  directory: PeerDirectory,
  secret: string,
  repository: string,
  tag: string,
): Promise<ImageLocation | undefined> {
  const peers = directory.replicas
    .filter((r) => r.endpoint !== undefined)
    .map((r) => new PeerClient({ region: r.region, url: r.endpoint ?? "" }, secret));
  try {
    const answers: Answer[] = await Promise.all(
      peers.map(async (peer) => {
        try {
          const found = await peer.manifestByReference(repository, tag, {
            timeoutMs: askTimeoutMs,
          });
          return { region: peer.region, peer, found };
        } catch (error) {
          return { region: peer.region, peer, error: (error as Error).message };
        }
      }),
    );
    const current = answers
      .flatMap((a) => ("found" in a && a.found ? [a.found] : []))
      .sort((a, b) => ((b.tagStamp ?? b.stamp) > (a.tagStamp ?? a.stamp) ? 1 : -1))[0];
    if (!current) return undefined;
    const since = isoOf(current.tagStamp ?? current.stamp);
    const needed = blobsOf(current.bytes, current.mediaType);
    const regions = await Promise.all(
      answers.map(async (answer): Promise<RegionImage> => {
        if ("error" in answer) {
          return { region: answer.region, state: "absent", reason: `unreachable: ${answer.error}` };
        }
        const found = answer.found;
        if (found?.digest === current.digest) {
          return { region: answer.region, state: "visible", digest: found.digest, since };
        }
        const missing = await whatIsMissing(answer.peer, repository, current.digest, needed);
        return {
          region: answer.region,
          state: "pending",
          ...(found ? { digest: found.digest } : {}),
          since,
          missing,
        };
      }),
    );
    return { repository, tag, digest: current.digest, regions };
  } finally {
    for (const peer of peers) peer.close();
  }
}

async function whatIsMissing(
  peer: PeerClient,
  repository: string,
  digest: Digest,
  blobs: Digest[],
): Promise<{ manifest: boolean; blobs: string[] }> {
  const manifest = (await peer.manifest(repository, digest).catch(() => undefined)) === undefined;
  const linked = await Promise.all(
    blobs.map((blob) =>
      peer
        .blobLink(repository, blob, { timeoutMs: askTimeoutMs })
        .then((link) => link !== undefined)
        .catch(() => false),
    ),
  );
  return { manifest, blobs: blobs.filter((_, i) => !linked[i]) };
}

function blobsOf(bytes: Buffer, mediaType: string): Digest[] {
  try {
    return parseManifest(bytes, mediaType).blobs;
  } catch {
    // Stored manifests were checked when pushed; one this version cannot read names none.
    return [];
  }
}

function isoOf(stamp: string): string | undefined {
  const parsed = parseStamp(stamp);
  return parsed ? new Date(parsed.physical).toISOString() : undefined;
}
