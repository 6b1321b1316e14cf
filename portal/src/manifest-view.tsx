// One manifest as the registry holds it: an index's children by platform (each opens in
// turn), an image's config (with the platform and creation time its config blob states)
// and layers with their sizes, the referrers pointing at it (signatures, SBOMs), and a
// confirmed delete of the manifest itself.
import { useState } from "preact/hooks";
import { call, getJson, repositoryPath } from "./api.ts";
import { ConfirmDialog } from "./confirm-dialog.tsx";
import { bytes, shortDigest, when } from "./format.ts";
import { usePoll } from "./use-poll.ts";

export const manifestTypes = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.docker.distribution.manifest.v2+json",
].join(", ");

interface Descriptor {
  mediaType?: string;
  digest: string;
  size: number;
  artifactType?: string;
  platform?: { os?: string; architecture?: string; variant?: string };
  annotations?: Record<string, string>;
}

interface Manifest {
  mediaType?: string;
  artifactType?: string;
  manifests?: Descriptor[];
  config?: Descriptor;
  layers?: Descriptor[];
  subject?: Descriptor;
}

interface Loaded {
  digest: string;
  manifest: Manifest;
  config: { created?: string; os?: string; architecture?: string } | undefined;
  referrers: Descriptor[];
}

async function load(repository: string, reference: string): Promise<Loaded> {
  const base = repositoryPath(repository);
  const answer = await call<Manifest | string>("GET", `${base}/manifests/${reference}`, {
    accept: manifestTypes,
  });
  const manifest = (
    typeof answer.body === "string" ? JSON.parse(answer.body) : answer.body
  ) as Manifest;
  const digest = answer.headers.get("docker-content-digest") ?? reference;
  const config =
    manifest.config &&
    manifest.config.size < 1_000_000 &&
    manifest.config.mediaType?.includes("json")
      ? await call<unknown>("GET", `${base}/blobs/${manifest.config.digest}`)
          .then((blob) => (typeof blob.body === "string" ? JSON.parse(blob.body) : blob.body))
          .catch(() => undefined)
      : undefined;
  const referrers = await getJson<{ manifests?: Descriptor[] }>(`${base}/referrers/${digest}`)
    .then((index) => index.manifests ?? [])
    .catch(() => []);
  return { digest, manifest, config: typeof config === "object" ? config : undefined, referrers };
}

export function ManifestView(props: {
  repository: string;
  reference: string;
  onOpen: (digest: string) => void;
  onDeleted: () => void;
}) {
  const loaded = usePoll(() => load(props.repository, props.reference), 60_000, props.reference);
  const [deleting, setDeleting] = useState(false);
  const data = loaded.data;
  return (
    <section class="manifest" aria-labelledby="manifest-title">
      <h3 id="manifest-title">
        Manifest <span class="mono">{data ? data.digest : props.reference}</span>
      </h3>
      {loaded.error && (
        <p class="error" role="alert">
          {loaded.error}
        </p>
      )}
      {data && (
        <>
          <p>
            {data.manifest.mediaType ?? "no media type"}
            {data.manifest.artifactType && ` (artifact ${data.manifest.artifactType})`}
          </p>
          {data.manifest.manifests && (
            <Descriptors
              title="Platforms"
              items={data.manifest.manifests}
              label={(d) =>
                d.platform
                  ? [d.platform.os, d.platform.architecture, d.platform.variant]
                      .filter(Boolean)
                      .join("/")
                  : (d.artifactType ?? "no platform")
              }
              onOpen={props.onOpen}
            />
          )}
          {data.manifest.config && (
            <dl class="facts">
              <dt>Config</dt>
              <dd class="mono">
                {shortDigest(data.manifest.config.digest)} ({bytes(data.manifest.config.size)})
              </dd>
              {data.config?.os && (
                <>
                  <dt>Platform</dt>
                  <dd>
                    {data.config.os}/{data.config.architecture}
                  </dd>
                </>
              )}
              {data.config?.created && (
                <>
                  <dt>Created</dt>
                  <dd>{when(data.config.created)}</dd>
                </>
              )}
              <dt>Total size</dt>
              <dd>{bytes((data.manifest.layers ?? []).reduce((sum, l) => sum + l.size, 0))}</dd>
            </dl>
          )}
          {data.manifest.layers && (
            <Descriptors
              title="Layers"
              items={data.manifest.layers}
              label={(d) => d.mediaType ?? "layer"}
            />
          )}
          <Descriptors
            title="Referrers"
            items={data.referrers}
            label={(d) => d.artifactType ?? d.mediaType ?? "artifact"}
            onOpen={props.onOpen}
            empty="No referrers (signatures, attestations) point at this manifest."
          />
          <button type="button" class="danger" onClick={() => setDeleting(true)}>
            Delete manifest
          </button>
        </>
      )}
      {deleting && data && (
        <ConfirmDialog
          title="Delete this manifest?"
          action="Delete"
          danger
          onConfirm={async () => {
            await call("DELETE", `${repositoryPath(props.repository)}/manifests/${data.digest}`);
            props.onDeleted();
          }}
          onClose={() => setDeleting(false)}
        >
          <p>
            <span class="mono">{data.digest}</span> and every tag naming it go, in every region.
          </p>
        </ConfirmDialog>
      )}
    </section>
  );
}

function Descriptors(props: {
  title: string;
  items: Descriptor[];
  label: (d: Descriptor) => string;
  onOpen?: (digest: string) => void;
  empty?: string;
}) {
  return (
    <>
      <h4>{props.title}</h4>
      {props.items.length === 0 ? (
        <p>{props.empty ?? "None."}</p>
      ) : (
        <div class="table-frame">
          <table>
            <tbody>
              {props.items.map((d) => (
                <tr key={d.digest}>
                  <td>{props.label(d)}</td>
                  <td class="mono" title={d.digest}>
                    {shortDigest(d.digest)}
                  </td>
                  <td>{bytes(d.size)}</td>
                  {props.onOpen && (
                    <td>
                      <button type="button" onClick={() => props.onOpen?.(d.digest)}>
                        Open<span class="visually-hidden"> {shortDigest(d.digest)}</span>
                      </button>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
