// End-to-end: an import survives the replica that runs it. The source is a Meridian with
// token authentication behind a proxy that holds the big layer's GET unanswered; while the
// job is running, the target replica is killed with SIGKILL and started again on its data
// folder. The job carries on by itself (same id, with the credentials it was given) and
// succeeds with the source's digest; what it ran with was on disk, mode 0600, only until
// it ended. The imported image's push event names the request that asked for the import.
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { stringify } from "yaml";
import { hashSecret } from "../../src/auth/password-hash.ts";
import { type ImportJob, type SourceProxy, startSourceProxy } from "../support/import-source.ts";
import { type MeridianProcess, startMeridian } from "../support/meridian-process.ts";
import { imageManifest, ociManifestType, randomBlob } from "../support/oci-fixtures.ts";
import { waitFor } from "../support/wait-for.ts";
import { webhookApi } from "../support/webhook-fixtures.ts";
import { startReceiver, type WebhookReceiver } from "../support/webhook-receiver.ts";

const adminPassword = "resume-admin-password-1";
const pullerPassword = "resume-puller-password-1";
const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

describe("an import interrupted by a crash of its replica", () => {
  let dir: string;
  let source: MeridianProcess;
  let target: MeridianProcess;
  let proxy: SourceProxy;
  let receiver: WebhookReceiver;
  const config = randomBlob(100);
  const layer = randomBlob(2 * 1024 * 1024);
  const manifest = imageManifest(config, [layer]);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "meridian-import-resume-"));
    const file = join(dir, "source.yaml");
    await writeFile(
      file,
      stringify({
        auth: {
          signingKey: "import-resume-signing-key-0123456789",
          users: [
            { name: "admin", passwordHash: await hashSecret(adminPassword), admin: true },
            {
              name: "puller",
              passwordHash: await hashSecret(pullerPassword),
              permissions: [{ repositories: "library/**", actions: ["pull"] }],
            },
          ],
        },
      }),
    );
    source = await startMeridian({ args: ["--config", file] });
    const admin = basic("admin", adminPassword);
    for (const blob of [config, layer]) {
      const put = await fetch(`${source.url}/v2/library/app/blobs/uploads/?digest=${blob.digest}`, {
        method: "POST",
        headers: { Authorization: admin },
        body: blob.bytes,
      });
      assert.equal(put.status, 201);
    }
    const put = await fetch(`${source.url}/v2/library/app/manifests/v1`, {
      method: "PUT",
      headers: { Authorization: admin, "Content-Type": ociManifestType },
      body: manifest.json,
    });
    assert.equal(put.status, 201);
    proxy = await startSourceProxy(source.url);
    target = await startMeridian();
    receiver = await startReceiver();
  });

  after(async () => {
    proxy?.release();
    await proxy?.close();
    await source?.dispose();
    await target?.dispose();
    await receiver?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const job = async (base: string, id: string): Promise<ImportJob> =>
    (await (await fetch(`${base}/_meridian/admin/imports/${id}`)).json()) as ImportJob;

  it("carries on after a kill -9 and a restart, and succeeds with the source's digest", async () => {
    const made = await webhookApi(target.url, "POST", "", {
      name: "mirror",
      uri: receiver.url,
      actions: ["push"],
      scope: "mirror/*:*",
    });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const firstUrl = target.url;
    proxy.holdBlob(layer.digest);
    const submitted = await fetch(`${target.url}/_meridian/admin/imports`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "User-Agent": "meridian-cli/test" },
      body: JSON.stringify({
        source: `${proxy.host}/library/app:v1`,
        image: "mirror/app:v1",
        username: "puller",
        password: pullerPassword,
      }),
    });
    assert.equal(submitted.status, 202);
    const requestId = submitted.headers.get("x-request-id");
    const { id } = (await submitted.json()) as ImportJob;
    await waitFor(
      async () => proxy.held === 1 && (await job(target.url, id)).state === "running",
      "the import running, its big layer held at the source",
      30_000,
      20,
    );
    const work = join(target.dataDir, "imports", `${id}.work.json`);
    assert.equal((await stat(work)).mode & 0o777, 0o600, "what the job runs with is private");

    await target.kill9();
    const { dataDir } = target;
    target = await startMeridian({ dataDir });

    let finished: ImportJob | undefined;
    await waitFor(
      async () => {
        finished = await job(target.url, id);
        return finished.state === "succeeded" || finished.state === "failed";
      },
      "the resumed import to end",
      60_000,
      50,
    );
    assert.equal(finished?.state, "succeeded", finished?.reason);
    assert.equal(finished?.digest, manifest.digest);
    const pulled = await fetch(`${target.url}/v2/mirror/app/manifests/v1`, {
      headers: { Accept: ociManifestType },
    });
    assert.equal(pulled.status, 200);
    assert.equal(pulled.headers.get("docker-content-digest"), manifest.digest);
    const blob = await fetch(`${target.url}/v2/mirror/app/blobs/${layer.digest}`);
    assert.deepEqual(Buffer.from(await blob.arrayBuffer()), layer.bytes);
    await waitFor(
      async () => !(await readdir(join(dataDir, "imports"))).some((f) => f.endsWith(".work.json")),
      "what the job ran with to be forgotten",
      10_000,
      20,
    );
    // The push the import made names the request that asked for it.
    await waitFor(() => receiver.received.length > 0, "the push event", 30_000, 20);
    const event = receiver.received[0]?.json as { action: string; request: unknown };
    assert.equal(event.action, "push");
    assert.deepEqual(event.request, {
      id: requestId,
      host: new URL(firstUrl).host,
      method: "POST",
      useragent: "meridian-cli/test",
    });
  });
});
