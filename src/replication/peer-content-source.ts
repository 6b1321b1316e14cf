// The registry's source of missing content in a geo-replicated deployment: the peers.
// A manifest PUT naming blobs uploaded to another replica (a split push) fetches them
// from the peer that links them before it validates; a GET for a manifest or blob this
// replica lacks asks the peers before answering 404 (read-through). Whatever is fetched
// is verified by digest and stored, through the same paths replication uses, so the
// later replicated records change nothing.
import type { Logger } from "pino";
import type { Digest } from "../oci/digest.ts";
import type { ContentSource } from "../registry/content-source.ts";
import type { Registry } from "../registry/registry.ts";
import type { ContentFetcher } from "../registry/replicated-change.ts";
import type { BlobFetcher } from "./blob-fetcher.ts";
import type { PeerClient } from "./peer-client.ts";

export class PeerContentSource implements ContentSource {
  constructor(
    private readonly peers: readonly PeerClient[],
    private readonly fetcher: BlobFetcher,
    private readonly registry: Registry,
    private readonly log: Logger,
  ) {}

  async fetchBlob(repository: string, digest: Digest): Promise<boolean> {
    let link: Awaited<ReturnType<PeerClient["blobLink"]>>;
    const holder = await this.firstPeer(async (peer) => {
      link = await peer.blobLink(repository, digest);
      return link !== undefined;
    });
    if (!holder || !link) return false;
    // The peer's own link, with its stamp, through the replication path: a link this
    // replica has since seen deleted stays deleted, and the replicated record of the same
    // link later changes nothing.
    await this.registry.remote.apply(
      { kind: "blob-link", repository, digest, stamp: link.stamp },
      this.contentFrom(holder),
    );
    return (await this.registry.metadata.getBlobLink(repository, digest)) !== undefined;
  }

  async fetchManifest(repository: string, reference: string): Promise<boolean> {
    let found: Awaited<ReturnType<PeerClient["manifestByReference"]>>;
    const holder = await this.firstPeer(async (peer) => {
      found = await peer.manifestByReference(repository, reference);
      return found !== undefined;
    });
    if (!holder || !found) return false;
    const manifest = found;
    const content = this.contentFrom(holder);
    await this.registry.remote.apply(
      {
        kind: "manifest-put",
        repository,
        digest: manifest.digest,
        stamp: manifest.stamp,
        mediaType: manifest.mediaType,
        bytes: manifest.bytes,
      },
      content,
    );
    if (manifest.tagStamp && !reference.includes(":")) {
      await this.registry.remote.apply(
        {
          kind: "tag-put",
          repository,
          tag: reference,
          digest: manifest.digest,
          stamp: manifest.tagStamp,
        },
        content,
      );
    }
    return true;
  }

  private contentFrom(holder: PeerClient): ContentFetcher {
    return {
      ensureBlob: (digest) => this.fetcher.ensureBlob(digest, holder),
      fetchManifest: (repo, digest) => holder.manifest(repo, digest),
    };
  }

  /** Asks every peer at once; the first that says yes wins. Unreachable peers say no. */
  private async firstPeer(
    ask: (peer: PeerClient) => Promise<boolean>,
  ): Promise<PeerClient | undefined> {
    const answers = this.peers.map(async (peer) => {
      try {
        if (await ask(peer)) return peer;
      } catch (error) {
        this.log.debug(
          { peer: peer.region, err: error },
          "peer could not answer a content request",
        );
      }
      throw new Error("no");
    });
    try {
      return await Promise.any(answers);
    } catch {
      return undefined;
    }
  }
}
