// End-to-end: a source that speaks HTTPS is imported over HTTPS, also on loopback (no
// fallback to plain HTTP once TLS answers): with a certificate the replica does not trust
// the import fails and says how to trust it; with its CA given to the replica through
// NODE_EXTRA_CA_CERTS, it succeeds.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { stringify } from "yaml";
import { pushTwoPlatformImage, runImport, twoPlatformImage } from "../support/import-source.ts";
import { type MeridianProcess, startMeridian } from "../support/meridian-process.ts";
import { selfSignedCertificate } from "../support/tls.ts";

describe("meridian import from an HTTPS source", () => {
  let dir: string;
  let cert: string;
  let source: MeridianProcess;
  const image = twoPlatformImage();

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "meridian-import-tls-"));
    const files = await selfSignedCertificate(dir);
    cert = files.cert;
    const config = join(dir, "tls.yaml");
    await writeFile(config, stringify({ tls: files }));
    // Filled over plain HTTP first (this process does not trust the certificate), then
    // served over HTTPS from the same data folder.
    const plain = await startMeridian();
    await pushTwoPlatformImage(plain.url, "library/app", "v1", image);
    await plain.stop();
    source = await startMeridian({ dataDir: plain.dataDir, args: ["--config", config] });
    assert.match(source.url, /^https:/);
  });

  after(async () => {
    await source?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it("refuses an untrusted certificate, and imports once the replica trusts it", async () => {
    const untrusting = await startMeridian();
    try {
      const job = await runImport(untrusting.url, { source: `${source.host}/library/app:v1` });
      assert.equal(job.state, "failed");
      assert.match(
        job.reason ?? "",
        /certificate this replica does not trust .*NODE_EXTRA_CA_CERTS/,
      );
    } finally {
      await untrusting.dispose();
    }
    const trusting = await startMeridian({ env: { NODE_EXTRA_CA_CERTS: cert } });
    try {
      const job = await runImport(trusting.url, {
        source: `${source.host}/library/app:v1`,
        withReferrers: true,
      });
      assert.equal(job.state, "succeeded", job.reason);
      assert.equal(job.digest, image.index.digest);
    } finally {
      await trusting.dispose();
    }
  });
});
