// The reads of the PostgreSQL metadata store, each one statement on the pool (READ
// COMMITTED: what any node committed before it). Counts and sizes come back from
// PostgreSQL as bigint text and are numbers again here.
import type pg from "pg";
import type { Digest } from "../oci/digest.ts";
import {
  type ChangeRow,
  changeRecord,
  type ManifestRow,
  toStoredManifest,
} from "./metadata-rows.ts";
import type {
  ChangeRecord,
  ControlRecord,
  LinkKey,
  LinkRow,
  ManifestNode,
  Page,
  Referrer,
  RepositoryUsage,
  Stamp,
  StoredManifest,
} from "./metadata-store.ts";
import { sql } from "./postgres-statements.ts";

export class PostgresReads {
  constructor(protected readonly pool: pg.Pool) {}

  protected async rows<R extends pg.QueryResultRow>(text: string, values: unknown[] = []) {
    return (await this.pool.query<R>(text, values)).rows;
  }

  private async exists(text: string, values: unknown[]): Promise<boolean> {
    return (await this.pool.query(text, values)).rowCount !== 0;
  }

  private async digests(text: string, values: unknown[]): Promise<Digest[]> {
    return (await this.rows<{ digest: Digest }>(text, values)).map((row) => row.digest);
  }

  async getBlobLink(
    repository: string,
    digest: Digest,
  ): Promise<{ size: number; stamp: Stamp } | undefined> {
    const [row] = await this.rows<{ size: string; stamp: string }>(sql.getBlobLink, [
      repository,
      digest,
    ]);
    return row && { size: Number(row.size), stamp: row.stamp };
  }

  async blobLinkStamp(repository: string, digest: Digest): Promise<Stamp | undefined> {
    const [row] = await this.rows<{ stamp: string | null }>(sql.linkRegisterStamp, [
      repository,
      digest,
    ]);
    return row?.stamp ?? undefined;
  }

  async missingBlobs(repository: string, digests: readonly Digest[]): Promise<Digest[]> {
    return this.digests(sql.missingBlobs, [repository, digests]);
  }

  async servedByManifest(repository: string, digest: Digest): Promise<boolean> {
    return this.exists(sql.servedByManifest, [repository, digest]);
  }

  async referencedByManifest(repository: string, digest: Digest): Promise<boolean> {
    return this.exists(sql.referencedByManifest, [repository, digest]);
  }

  async listedByIndex(repository: string, digest: Digest): Promise<boolean> {
    return this.exists(sql.listedByIndex, [repository, digest]);
  }

  async missingManifests(repository: string, digests: readonly Digest[]): Promise<Digest[]> {
    return this.digests(sql.missingManifests, [repository, digests]);
  }

  async getManifest(repository: string, digest: Digest): Promise<StoredManifest | undefined> {
    const [row] = await this.rows<ManifestRow>(sql.getManifest, [repository, digest]);
    return toStoredManifest(row);
  }

  async getTaggedManifest(repository: string, tag: string): Promise<StoredManifest | undefined> {
    const [row] = await this.rows<ManifestRow>(sql.getTaggedManifest, [repository, tag]);
    return toStoredManifest(row);
  }

  async manifestExpired(repository: string, digest: Digest): Promise<boolean | undefined> {
    const [row] = await this.rows<{ expired: boolean }>(sql.manifestTombstone, [
      repository,
      digest,
    ]);
    return row?.expired;
  }

  async storedBytes(): Promise<{ blobs: number; blobBytes: number; manifestBytes: number }> {
    const [[blobs], [manifests]] = await Promise.all([
      this.rows<{ blobs: string; bytes: string }>(sql.storedBlobs),
      this.rows<{ bytes: string }>(sql.storedManifestBytes),
    ]);
    return {
      blobs: Number(blobs?.blobs ?? 0),
      blobBytes: Number(blobs?.bytes ?? 0),
      manifestBytes: Number(manifests?.bytes ?? 0),
    };
  }

  async controlRecords(kind: string): Promise<ControlRecord[]> {
    return this.rows<ControlRecord>(sql.controlsOfKind, [kind]);
  }

  async listTags(repository: string, page: Page): Promise<string[] | undefined> {
    if (!(await this.exists(sql.repositoryExists, [repository]))) return undefined;
    const rows = await this.rows<{ tag: string }>(sql.listTags, [
      repository,
      page.last ?? "",
      page.limit ?? null,
    ]);
    return rows.map((row) => row.tag);
  }

  async listTagsJson(repository: string): Promise<string | undefined> {
    if (!(await this.exists(sql.repositoryExists, [repository]))) return undefined;
    const [row] = await this.rows<{ json: string }>(sql.listTagsJson, [repository]);
    return row?.json ?? "[]";
  }

  async listRepositories(page: Page): Promise<string[]> {
    const rows = await this.rows<{ name: string }>(sql.listRepositories, [
      page.last ?? "",
      page.limit ?? null,
    ]);
    return rows.map((row) => row.name);
  }

  async listReferrers(
    repository: string,
    digest: Digest,
    artifactType?: string,
  ): Promise<Referrer[]> {
    const rows = await this.rows<{
      digest: string;
      media_type: string;
      size: number;
      artifact_type: string | null;
      annotations: string | null;
    }>(sql.listReferrers, [repository, digest]);
    return rows
      .filter((row) => artifactType === undefined || row.artifact_type === artifactType)
      .map((row) => {
        const referrer: Referrer = {
          mediaType: row.media_type,
          digest: row.digest as Digest,
          size: row.size,
        };
        if (row.artifact_type !== null) referrer.artifactType = row.artifact_type;
        if (row.annotations !== null) referrer.annotations = JSON.parse(row.annotations);
        return referrer;
      });
  }

  async changesSince(since: number, limit: number): Promise<ChangeRecord[]> {
    const rows = await this.rows<ChangeRow>(sql.changesSince, [since, limit]);
    return rows.map(changeRecord);
  }

  async headSeq(): Promise<number> {
    const [row] = await this.rows<{ seq: string }>(sql.headSeq);
    return Number(row?.seq ?? 0);
  }

  async latestStamp(): Promise<Stamp | undefined> {
    const [row] = await this.rows<{ stamp: string | null }>(sql.latestStamp);
    return row?.stamp ?? undefined;
  }

  async expirableLinks(
    olderThan: Stamp,
    after: LinkKey | undefined,
    limit: number,
  ): Promise<LinkRow[]> {
    const rows = await this.rows<{
      repository: string;
      digest: Digest;
      size: string;
      stamp: string;
    }>(sql.expirableLinks, [after?.repository ?? "", after?.digest ?? "", olderThan, limit]);
    return rows.map((row) => ({ ...row, size: Number(row.size) }));
  }

  async unreferencedBlobs(digests: readonly Digest[], olderThan: Stamp): Promise<Digest[]> {
    return this.digests(sql.unreferencedBlobs, [digests, olderThan]);
  }

  async manifestGraph(repository: string): Promise<ManifestNode[]> {
    const rows = await this.rows<{
      digest: Digest;
      stamp: string;
      size: number;
      tagged: boolean;
      children: string;
      subject: Digest | null;
    }>(sql.manifestGraph, [repository]);
    return rows.map((row) => ({
      digest: row.digest,
      stamp: row.stamp,
      size: row.size,
      tagged: row.tagged,
      children: JSON.parse(row.children) as Digest[],
      subject: row.subject ?? undefined,
    }));
  }

  async repositoryUsage(): Promise<RepositoryUsage[]> {
    const rows = await this.rows<{
      repository: string;
      links: string;
      linked_bytes: string;
      manifests: string;
      manifest_bytes: string;
    }>(sql.repositoryUsage);
    return rows.map((row) => ({
      repository: row.repository,
      links: Number(row.links),
      linkedBytes: Number(row.linked_bytes),
      manifests: Number(row.manifests),
      manifestBytes: Number(row.manifest_bytes),
    }));
  }
}
