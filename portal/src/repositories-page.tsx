// The repositories page: the catalogue (OCI /v2/_catalog, a page of 20 at a time, with a
// filter on the page's names), a repository's tags with their digests, sizes and the
// regions each tag is visible or pending in (the admin image API), and a confirmed delete
// of a tag. The manifest view is manifest-view.tsx.
import { useState } from "preact/hooks";
import { call, getJson, type ImageRegions, repositoryPath } from "./api.ts";
import { ConfirmDialog } from "./confirm-dialog.tsx";
import { bytes, shortDigest, when } from "./format.ts";
import { ManifestView, manifestTypes } from "./manifest-view.tsx";
import { usePoll } from "./use-poll.ts";

const pageSize = 20;

export function RepositoriesPage() {
  const [pages, setPages] = useState<string[]>([""]);
  const [filter, setFilter] = useState("");
  const [selected, setSelected] = useState<string | undefined>(undefined);
  const last = pages[pages.length - 1] ?? "";
  // A search reads the catalogue from its start (up to 1000 names): the OCI API has no
  // search of its own. Without one, pages of 20.
  const searching = filter.trim() !== "";
  const query = searching
    ? "n=1000"
    : `n=${pageSize}${last ? `&last=${encodeURIComponent(last)}` : ""}`;
  const catalog = usePoll(
    () => getJson<{ repositories: string[] }>(`/v2/_catalog?${query}`),
    10_000,
    query,
  );
  const names = catalog.data?.repositories ?? [];
  const shown = names.filter((n) => n.includes(filter.trim()));
  return (
    <section aria-labelledby="repositories-title">
      <h1 id="repositories-title">Repositories</h1>
      <div class="toolbar">
        <label>
          Search repositories{" "}
          <input
            type="search"
            value={filter}
            onInput={(event) => setFilter((event.target as HTMLInputElement).value)}
          />
        </label>
        <button
          type="button"
          disabled={pages.length < 2}
          onClick={() => setPages(pages.slice(0, -1))}
        >
          Previous page
        </button>
        <button
          type="button"
          disabled={searching || names.length < pageSize}
          onClick={() => setPages([...pages, names[names.length - 1] ?? ""])}
        >
          Next page
        </button>
      </div>
      {catalog.error && (
        <p class="error" role="alert">
          {catalog.error}
        </p>
      )}
      <div class="repositories">
        <ul class="repository-list" aria-label="Repositories on this page">
          {shown.map((name) => (
            <li key={name}>
              <button
                type="button"
                class={name === selected ? "link selected" : "link"}
                aria-current={name === selected ? "true" : undefined}
                onClick={() => setSelected(name)}
              >
                {name}
              </button>
            </li>
          ))}
          {catalog.data && shown.length === 0 && <li>No repository here.</li>}
        </ul>
        {selected && <TagList key={selected} repository={selected} />}
      </div>
    </section>
  );
}

interface TagRow {
  tag: string;
  digest: string | undefined;
  size: number | undefined;
  /** When the tag was written (the regions that show it say). */
  pushed: string | undefined;
  regions: ImageRegions["regions"] | undefined;
}

async function readTags(repository: string): Promise<TagRow[]> {
  const listed = await getJson<{ tags: string[] | null }>(
    `${repositoryPath(repository)}/tags/list`,
  );
  const tags = (listed.tags ?? []).slice(0, 100);
  return Promise.all(
    tags.map(async (tag) => {
      const head = await call("HEAD", `${repositoryPath(repository)}/manifests/${tag}`, {
        accept: manifestTypes,
      }).catch(() => undefined);
      const regions = await getJson<ImageRegions>(
        `/_meridian/admin/image?repository=${encodeURIComponent(repository)}&tag=${encodeURIComponent(tag)}`,
      ).catch(() => undefined);
      const length = head?.headers.get("content-length");
      const pushed = regions?.regions
        .filter((r) => r.state === "visible" && r.since)
        .map((r) => r.since ?? "")
        .sort()[0];
      return {
        pushed,
        tag,
        digest: head?.headers.get("docker-content-digest") ?? regions?.digest,
        size: length ? Number(length) : undefined,
        regions: regions?.regions,
      };
    }),
  );
}

function TagList(props: { repository: string }) {
  const tags = usePoll(() => readTags(props.repository), 3_000, props.repository);
  const [viewing, setViewing] = useState<string | undefined>(undefined);
  const [deleting, setDeleting] = useState<string | undefined>(undefined);
  return (
    <div class="tags">
      <h2>{props.repository}</h2>
      {tags.error && (
        <p class="error" role="alert">
          {tags.error}
        </p>
      )}
      <div class="table-frame">
        <table>
          <thead>
            <tr>
              <th scope="col">Tag</th>
              <th scope="col">Digest</th>
              <th scope="col">Manifest size</th>
              <th scope="col">Pushed</th>
              <th scope="col">Regions</th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {(tags.data ?? []).map((row) => (
              <tr key={row.tag} data-tag={row.tag}>
                <th scope="row">{row.tag}</th>
                <td class="mono" title={row.digest}>
                  {shortDigest(row.digest)}
                </td>
                <td>{row.size === undefined ? "-" : bytes(row.size)}</td>
                <td>{when(row.pushed)}</td>
                <td>
                  {row.regions ? (
                    <ul class="region-states" aria-label={`Regions of ${row.tag}`}>
                      {row.regions.map((r) => (
                        <li
                          key={r.region}
                          class={`state-${r.state}`}
                          data-region={r.region}
                          data-visibility={r.state}
                          title={
                            r.missing
                              ? `waiting since ${when(r.since)} for ${r.missing.manifest ? "the manifest and " : ""}${r.missing.blobs.length} blobs`
                              : r.since && `since ${when(r.since)}`
                          }
                        >
                          {r.region}: {r.state}
                        </li>
                      ))}
                    </ul>
                  ) : (
                    "not reported"
                  )}
                </td>
                <td class="actions">
                  <button type="button" onClick={() => setViewing(row.digest ?? row.tag)}>
                    View<span class="visually-hidden"> manifest of {row.tag}</span>
                  </button>
                  <button
                    type="button"
                    class="danger"
                    aria-label={`Delete tag ${row.tag}`}
                    onClick={() => setDeleting(row.tag)}
                  >
                    Delete
                  </button>
                </td>
              </tr>
            ))}
            {tags.data && tags.data.length === 0 && (
              <tr>
                <td colSpan={6}>No tags.</td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
      {viewing && (
        <ManifestView
          key={viewing}
          repository={props.repository}
          reference={viewing}
          onOpen={setViewing}
          onDeleted={() => {
            setViewing(undefined);
            tags.refresh();
          }}
        />
      )}
      {deleting && (
        <ConfirmDialog
          title={`Delete the tag ${deleting}?`}
          action="Delete"
          danger
          onConfirm={async () => {
            await call("DELETE", `${repositoryPath(props.repository)}/manifests/${deleting}`);
            tags.refresh();
          }}
          onClose={() => setDeleting(undefined)}
        >
          <p>The tag goes in every region; the manifest it named stays, reachable by its digest.</p>
        </ConfirmDialog>
      )}
    </div>
  );
}
