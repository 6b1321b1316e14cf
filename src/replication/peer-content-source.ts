// The registry's source of missing content in a geo-replicated deployment: the peers.
// A manifest PUT naming blobs uploaded to another replica (a split push) fetches them
// from the peer that links them before it validates; a GET for a manifest or blob this
// replica lacks asks the peers before answering 404 (read-through), and a blob HEAD is
// answered from the size a peer reports, without moving the blob. Whatever is fetched is
// verified by digest and stored, through the same paths replication uses, so the later
// replicated records change nothing.
//
// Who has it is asked only of the peers reachable now (their followers know), and each
// has a short deadline to answer: a miss (a HEAD before every layer push, a GET of a new
// tag) must not wait for a dead or slow peer, which counts as "no". The transfer that
// follows a "yes" has no such deadline.
import type { Logger } from "pino";
import type { Digest } from "../oci/digest.ts";
import type { ContentSource, IncomingBlob } from "../registry/content-source.ts";
import type { Registry } from "../registry/registry.ts";
import type { ContentFetcher } from "../registry/replicated-change.ts";
import type { BlobFetcher } from "./blob-fetcher.ts";
import type { PeerClient } from "./peer-client.ts";

export interface PeerContentSourceOptions {
  peers: readonly PeerClient[];
  fetcher: BlobFetcher;
  registry: Registry;
  log: Logger;
  /** Whether a peer is worth asking now (its follower reaches it). */
  isReachable(peer: PeerClient): boolean;
  /** How long the peers have to say whether they hold something. */
  askTimeoutMs: number;
}

export class PeerContentSource implements ContentSource {
  constructor(private readonly options: PeerContentSourceOptions) {}

  async statBlob(repository: string, digest: Digest): Promise<{ size: number } | undefined> {
    return (await this.blobHolder(repository, digest))?.answer;
  }

  async openBlob(repository: string, digest: Digest): Promise<IncomingBlob | undefined> {
    const holder = await this.blobHolder(repository, digest);
    if (!holder) return undefined;
    const { size } = holder.answer;
    // Concurrent GETs of one missing blob join the transfer in flight for it (started by
    // one of them or by replication): one peer transfer, each reader from byte 0.
    return {
      size,
      sendTo: (sink, begin) =>
        this.options.fetcher.sendTo(digest, holder.peer, sink, {
          size,
          begin,
          finalize: async () => {
            if (!(await this.link(repository, digest, holder)))
              throw new Error(`${digest} is not stored after its transfer`);
          },
        }),
    };
  }

  async fetchBlob(repository: string, digest: Digest): Promise<boolean> {
    const holder = await this.blobHolder(repository, digest);
    if (!holder) return false;
    await this.options.fetcher.ensureBlob(digest, holder.peer);
    return this.link(repository, digest, holder);
  }

  async fetchManifest(repository: string, reference: string): Promise<boolean> {
    const { registry, fetcher, askTimeoutMs } = this.options;
    const holder = await this.firstPeer((peer, signal) =>
      peer.manifestByReference(repository, reference, { signal, timeoutMs: askTimeoutMs }),
    );
    if (!holder) return false;
    const { peer, answer: manifest } = holder;
    const content: ContentFetcher = {
      ensureBlob: (digest) => fetcher.ensureBlob(digest, peer),
      fetchManifest: (repo, digest) => peer.manifest(repo, digest),
    };
    await registry.remote.apply(
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
      await registry.remote.apply(
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

  /**
   * A reachable peer that links the blob with a stamp newer than this replica's own
   * register for it: a link deleted here since the peer's write is not read through.
   */
  private async blobHolder(repository: string, digest: Digest) {
    const { askTimeoutMs, registry } = this.options;
    const local = await registry.state.blobLinkStamp(repository, digest);
    return this.firstPeer(async (peer, signal) => {
      const link = await peer.blobLink(repository, digest, { signal, timeoutMs: askTimeoutMs });
      return link && (local === undefined || link.stamp > local) ? link : undefined;
    });
  }

  /**
   * Links a blob now stored here into `repository` with the peer's own stamp, through the
   * replication path, so that the replicated record of the same link later changes
   * nothing. False when it is not linked afterwards.
   */
  private async link(
    repository: string,
    digest: Digest,
    holder: { peer: PeerClient; answer: { stamp: string } },
  ): Promise<boolean> {
    const { registry, fetcher } = this.options;
    await registry.remote.apply(
      { kind: "blob-link", repository, digest, stamp: holder.answer.stamp },
      {
        ensureBlob: (blob) => fetcher.ensureBlob(blob, holder.peer),
        fetchManifest: (repo, manifest) => holder.peer.manifest(repo, manifest),
      },
    );
    return (await registry.state.blobLink(repository, digest)) !== undefined;
  }

  /**
   * Asks every reachable peer at once; the first that answers wins, and the questions to
   * the others are abandoned. A peer that fails, or has not answered within the deadline,
   * says no.
   */
  private async firstPeer<T>(
    ask: (peer: PeerClient, signal: AbortSignal) => Promise<T | undefined>,
  ): Promise<{ peer: PeerClient; answer: T } | undefined> {
    const { peers, isReachable, askTimeoutMs, log } = this.options;
    const asked = peers.filter((peer) => isReachable(peer));
    if (asked.length === 0) return undefined;
    const abandon = new AbortController();
    const deadline = setTimeout(
      () => abandon.abort(new Error(`no answer within ${askTimeoutMs} ms`)),
      askTimeoutMs,
    );
    const answers = asked.map(async (peer) => {
      try {
        const answer = await ask(peer, abandon.signal);
        if (answer !== undefined) return { peer, answer };
      } catch (error) {
        if (abandon.signal.reason !== "answered") {
          log.debug({ peer: peer.region, err: error }, "peer could not answer a content request");
        }
      }
      throw new Error("no");
    });
    try {
      return await Promise.any(answers);
    } catch {
      return undefined;
    } finally {
      clearTimeout(deadline);
      abandon.abort("answered");
    }
  }
}
