// Who this replica's peers are and how to reach them: the replica set's records (every
// replica but this one, deleting ones included so that they are drained), each at its
// recorded endpoint unless a route says otherwise. Routes are how `meridian up` puts its
// emulated WAN links between replicas: a JSON file {region: url} that it rewrites when a
// replica is added, watched here. Before any record has arrived (a replica that has not
// heard from the home replica yet) the peers of the configuration file stand in, and so
// does every peer of the file that the records do not mention yet.
import { type FSWatcher, watch } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, dirname } from "node:path";
import type { Logger } from "pino";
import { byCodeUnits } from "../code-unit-order.ts";
import type { PeerEndpoint } from "../replication/peer-client.ts";
import type { HomeReplica } from "./home-forwarding.ts";
import type { ReplicaRecord, ReplicaSet } from "./replica-set.ts";

export interface PeerDirectoryOptions {
  /** This replica's region. */
  self: string;
  replicaSet: ReplicaSet;
  /** The configuration's peers (topology file and MERIDIAN_PEER_* variables). */
  configPeers: readonly PeerEndpoint[];
  /** The home replica the configuration names, until the records say. */
  configHome: HomeReplica | undefined;
  /** A routes file ({region: url}) to watch, or none. */
  routesFile?: string | undefined;
  log: Logger;
  /** Called with the whole peer list whenever it changes. */
  onPeers: (peers: PeerEndpoint[]) => void;
}

export class PeerDirectory {
  private routes: Record<string, string> = {};
  private records: ReplicaRecord[] = [];
  private removed = new Set<string>();
  private published = "";
  private watcher: FSWatcher | undefined;
  private unsubscribe: (() => void) | undefined;
  private refreshing: Promise<void> = Promise.resolve();

  constructor(private readonly options: PeerDirectoryOptions) {}

  async start(): Promise<void> {
    const { routesFile } = this.options;
    if (routesFile) {
      // The folder is watched, not the file: the file is replaced by a rename.
      this.watcher = watch(dirname(routesFile), (_event, name) => {
        if (name === null || name === basename(routesFile)) this.refreshSoon();
      });
      this.watcher.on("error", (error) =>
        this.options.log.warn({ err: error }, "cannot watch the peer routes file"),
      );
    }
    this.unsubscribe = this.options.replicaSet.onChange(() => this.refreshSoon());
    await this.refresh();
  }

  stop(): void {
    this.watcher?.close();
    this.unsubscribe?.();
  }

  /** The replica set as this replica knows it (records; empty before any arrived). */
  get replicas(): readonly ReplicaRecord[] {
    return this.records;
  }

  /** The URL this replica reaches `region` at, or undefined for an unknown region. */
  urlOf(region: string): string | undefined {
    const route = this.routes[region];
    if (route) return route;
    const configured = this.options.configPeers.find((p) => p.region === region)?.url;
    return configured ?? this.records.find((r) => r.region === region)?.endpoint;
  }

  /** The home replica to forward control-plane writes to; undefined when this is it. */
  home(): HomeReplica | undefined {
    const record = this.records.find((r) => r.home);
    if (!record) return this.options.configHome;
    if (record.region === this.options.self) return undefined;
    const url = this.urlOf(record.region);
    return url ? { region: record.region, url } : this.options.configHome;
  }

  /**
   * Every replica of the records but this one, and the configuration's peers that the
   * records do not know yet (records arrive one at a time) and have not deleted.
   */
  peers(): PeerEndpoint[] {
    const peers: PeerEndpoint[] = this.options.configPeers.filter(
      (peer) =>
        !this.removed.has(peer.region) && !this.records.some((r) => r.region === peer.region),
    );
    for (const record of this.records) {
      // A drained replica is about to go: following it would only log its disappearance.
      const skip = record.region === this.options.self || record.drained === true;
      const url = skip ? undefined : this.urlOf(record.region);
      // A replica that has not joined yet has no endpoint to follow.
      if (url) peers.push({ region: record.region, url });
    }
    return peers.sort((a, b) => byCodeUnits(a.region, b.region));
  }

  /** Re-reads the records and routes now; resolves once the peers are published. */
  refresh(): Promise<void> {
    this.refreshing = this.refreshing.then(() => this.reload());
    return this.refreshing;
  }

  private refreshSoon(): void {
    this.refresh().catch((error: unknown) =>
      this.options.log.error({ err: error }, "could not refresh the peer list"),
    );
  }

  private async reload(): Promise<void> {
    this.records = await this.options.replicaSet.list();
    this.removed = await this.options.replicaSet.removed();
    this.routes = await this.readRoutes();
    const peers = this.peers();
    const key = JSON.stringify(peers);
    if (key === this.published) return;
    this.published = key;
    this.options.onPeers(peers);
  }

  private async readRoutes(): Promise<Record<string, string>> {
    const file = this.options.routesFile;
    if (!file) return {};
    try {
      const parsed = JSON.parse(await readFile(file, "utf8")) as unknown;
      if (typeof parsed !== "object" || parsed === null) return {};
      return Object.fromEntries(
        Object.entries(parsed).filter((e): e is [string, string] => typeof e[1] === "string"),
      );
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
        this.options.log.warn({ err: error, file }, "cannot read the peer routes file");
      }
      return this.routes;
    }
  }
}
