// End-to-end: the portal in a real headless Chromium (Debian's, driven by playwright-core)
// against a supervised three-region cluster (westus home, eastus, westeurope) with a global
// endpoint hosted by westus. With no user the portal opens without a login and says so;
// once a user exists it asks for one, and its HttpOnly, SameSite=Strict cookie works for
// the admin API and /v2/ (writes only with the CSRF header). The map shows the three
// replicas and the other regions as available; a fourth replica created by clicking its
// marker and `Create` reaches Ready on the map with no reload; an image pushed with skopeo
// is listed with the regions it is visible in; routing is toggled; deleting the home
// replica is refused with the reason; the pages work through the global endpoint and on a
// 390-pixel-wide screen; no page logs a console error. The screenshots of the README
// (docs/portal-map.png, docs/portal-repository.png) are made here: run it with
// MERIDIAN_SCREENSHOTS=docs to rewrite them.
// Owns: this file. Helpers: test/support/{cluster,skopeo,oci-layout,wait-for}.ts.
import assert from "node:assert/strict";
import { access, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe } from "node:test";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import {
  clusterTest as clusterTestOf,
  freePorts,
  startTestCluster,
  type TestCluster,
} from "../support/cluster.ts";
import { OciLayoutBuilder, sha256Digest } from "../support/oci-layout.ts";
import { createSkopeo, type Skopeo } from "../support/skopeo.ts";
import { waitFor } from "../support/wait-for.ts";

const chromiumPath = "/usr/bin/chromium";
const regions = ["westus", "eastus", "westeurope"] as const;
const password = "root-password-1";
const basic = `Basic ${Buffer.from(`root:${password}`).toString("base64")}`;
// The README's screenshots are rewritten only when asked (MERIDIAN_SCREENSHOTS=docs), so
// that a test run leaves the working tree as it found it; otherwise they go to a temp file.
const docs =
  process.env.MERIDIAN_SCREENSHOTS === "docs"
    ? new URL("../../docs/", import.meta.url).pathname
    : tmpdir();
const signatureType = "application/vnd.example.signature";
const emptyDigest = sha256Digest(Buffer.from("{}"));
/** Far from every other marker, so that a click lands on it alone. */
const newRegion = "brazilsouth";

interface Replication {
  name: string;
  status: string;
  regionEndpointEnabled: boolean;
}

const skip = await access(chromiumPath).then(
  () => false,
  () => `${chromiumPath} is not installed (apt-get install chromium)`,
);

describe("the portal in a browser", { skip }, () => {
  let cluster: TestCluster;
  let globalUrl: string;
  let work: string;
  let context: BrowserContext;
  let page: Page;
  let skopeo: Skopeo;
  /** Console errors and uncaught exceptions of every page, with the page they came from. */
  const problems: string[] = [];
  /** Requests expected to fail (the refused delete of the home replica). */
  const expectedFailures: RegExp[] = [];
  const clusterTest = (name: string, body: () => Promise<void>) =>
    clusterTestOf(() => cluster, name, body, 180_000);

  before(async () => {
    const [globalPort] = await freePorts(1);
    cluster = await startTestCluster({
      regions,
      wan: { rttMs: 4 },
      supervised: true,
      globalEndpoint: {
        listen: `127.0.0.1:${globalPort}`,
        hostedBy: "westus",
        defaultRegion: "westus",
        geoip: false,
        probeIntervalMs: 200,
      },
    });
    globalUrl = `http://127.0.0.1:${globalPort}`;
    work = await mkdtemp(join(tmpdir(), "meridian-portal-"));
    skopeo = await createSkopeo(join(work, "skopeo"));
    context = await chromium.launchPersistentContext(join(work, "profile"), {
      executablePath: chromiumPath,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
      viewport: { width: 1280, height: 800 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on("console", (message) => {
      if (message.type() !== "error") return;
      const url = message.location().url;
      if (expectedFailures.some((pattern) => pattern.test(url))) return;
      problems.push(`${page.url()}: ${message.text()} (${url})`);
    });
    page.on("pageerror", (error) => problems.push(`${page.url()}: ${error.message}`));
  });

  after(async () => {
    await context?.close();
    await cluster?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const portal = (hash = "map", base = cluster.url("westus")) =>
    page.goto(`${base}/portal/#/${hash}`, { waitUntil: "domcontentloaded" });
  const marker = (region: string) => page.locator(`[data-region="${region}"]`).first();
  const replications = async (): Promise<Replication[]> => {
    const response = await fetch(`${cluster.url("westus")}/_meridian/admin/replications`, {
      headers: { Authorization: basic },
      signal: AbortSignal.timeout(15_000),
    });
    return (await response.json()) as Replication[];
  };
  /** A signature-like artifact whose subject is `subject`, pushed over HTTP. */
  const pushSignature = async (subject: { mediaType: string; digest: string; size: number }) => {
    const empty = { mediaType: "application/vnd.oci.empty.v1+json", digest: emptyDigest, size: 2 };
    const base = `${cluster.url("westus")}/v2/team/web`;
    const blob = await fetch(`${base}/blobs/uploads/?digest=${emptyDigest}`, {
      method: "POST",
      headers: { Authorization: basic, "Content-Type": "application/octet-stream" },
      body: "{}",
    });
    assert.equal(blob.status, 201, await blob.text());
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        artifactType: signatureType,
        config: empty,
        layers: [empty],
        subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
      }),
    );
    const put = await fetch(`${base}/manifests/${sha256Digest(manifest)}`, {
      method: "PUT",
      headers: {
        Authorization: basic,
        "Content-Type": "application/vnd.oci.image.manifest.v1+json",
      },
      body: manifest,
    });
    assert.equal(put.status, 201, await put.text());
  };
  const noProblems = (where: string) => assert.deepEqual(problems, [], `console errors ${where}`);

  clusterTest("with no user the portal opens without a login and says so", async () => {
    await portal();
    await page.getByText("Authentication is off").waitFor();
    await marker("westus").waitFor();
    assert.equal(await page.getByLabel("Username").count(), 0, "no login form");
    noProblems("with authentication off");
    // The page polls: it must not be open while the user is added (its reads then fail).
    await page.goto("about:blank");
  });

  clusterTest(
    "once a user exists it asks for a login and keeps the session in a strict cookie",
    async () => {
      const created = await fetch(`${cluster.url("westus")}/_meridian/admin/users/root`, {
        method: "PUT",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ password, admin: true }),
      });
      assert.equal(created.status, 200, await created.text());
      await waitFor(
        async () =>
          (
            await Promise.all(
              regions.map(async (r) => (await fetch(`${cluster.url(r)}/v2/`)).status === 401),
            )
          ).every(Boolean),
        "the user in every region",
        30_000,
        50,
      );
      await portal();
      await page.getByLabel("Username").fill("root");
      await page.getByLabel("Password").fill("wrong-password");
      expectedFailures.push(/\/portal\/api\/login$/);
      await page.getByRole("button", { name: "Log in" }).click();
      await page.getByRole("alert").filter({ hasText: "wrong user name or password" }).waitFor();
      await page.getByLabel("Password").fill(password);
      await page.getByRole("button", { name: "Log in" }).click();
      await page.getByRole("button", { name: "Log out" }).waitFor();
      expectedFailures.pop();
      const [cookie] = await context.cookies(cluster.url("westus"));
      assert.equal(cookie?.name, "meridian-session");
      assert.equal(cookie?.httpOnly, true);
      assert.equal(cookie?.sameSite, "Strict");
      assert.ok(!page.url().includes(password), "no secret in the URL");
      // Strings, not functions: they run in the page (this file has no DOM types).
      const stored = await page.evaluate("JSON.stringify(localStorage) + document.cookie");
      assert.equal(
        stored,
        "{}",
        "nothing in local storage, and the cookie is out of the page's reach",
      );

      // The cookie alone reads, and writes need the CSRF header the page got at login.
      const header = { cookie: `${cookie.name}=${cookie.value}` };
      const read = await fetch(`${cluster.url("eastus")}/_meridian/admin/replications`, {
        headers: header,
      });
      assert.equal(read.status, 200, "a session of one region is good in another");
      const forged = await fetch(`${cluster.url("westus")}/_meridian/admin/replications/eastus`, {
        method: "PATCH",
        headers: { ...header, "Content-Type": "application/json" },
        body: JSON.stringify({ regionEndpointEnabled: false }),
      });
      assert.equal(forged.status, 403, "a write without the CSRF header is refused");
      // With it, a write sent to another replica is forwarded to the home replica, cookie
      // and header included, and made there.
      const session = await fetch(`${cluster.url("eastus")}/portal/api/session`, {
        headers: header,
      });
      const { csrf } = (await session.json()) as { csrf: string };
      const forwarded = await fetch(
        `${cluster.url("eastus")}/_meridian/admin/replications/eastus`,
        {
          method: "PATCH",
          headers: { ...header, "Content-Type": "application/json", "X-Meridian-CSRF": csrf },
          body: JSON.stringify({ regionEndpointEnabled: true }),
        },
      );
      assert.equal(forwarded.status, 200, await forwarded.text());
      noProblems("at login");
    },
  );

  clusterTest(
    "the map shows the replicas, and a replica created there reaches Ready live",
    async () => {
      await portal();
      for (const region of regions) {
        await page.locator(`[data-region="${region}"][data-state="replica"]`).waitFor();
      }
      await page.locator('[data-region="westus"][data-home="true"][data-status="Ready"]').waitFor();
      assert.equal(await marker("northeurope").getAttribute("data-state"), "available");
      assert.equal(await marker(newRegion).getAttribute("data-state"), "available");
      await page.evaluate("window.notReloaded = true");

      // The keyboard reaches a marker too: Enter opens the confirmation, Escape closes it.
      await marker("northeurope").focus();
      await page.keyboard.press("Enter");
      await page.getByRole("dialog").getByText("North Europe").first().waitFor();
      await page.keyboard.press("Escape");
      await page.getByRole("dialog").waitFor({ state: "hidden" });

      await marker(newRegion).click();
      await page.getByRole("button", { name: "Create", exact: true }).click();
      await page.locator(`[data-region="${newRegion}"][data-state="replica"]`).waitFor();
      await page
        .locator(`[data-region="${newRegion}"][data-status="Ready"]`)
        .waitFor({ timeout: 150_000 });
      assert.equal(
        await page.evaluate("window.notReloaded"),
        true,
        "the marker became Ready without a reload",
      );
      await marker(newRegion).click();
      await page.getByRole("heading", { name: "Brazil South" }).waitFor();
      await page.screenshot({ path: join(docs, "portal-map.png") });
      noProblems("on the map");
    },
  );

  clusterTest(
    "an image pushed with skopeo is listed with the regions it is visible in",
    async () => {
      const layoutDir = join(work, "layout");
      const layout = await OciLayoutBuilder.create(layoutDir);
      const image = await layout.addImage({
        layerSizes: [40_000, 3_000],
        architecture: "amd64",
        os: "linux",
      });
      layout.tag(image.manifest, "v1");
      const multi = await layout.addIndex([
        { layerSizes: [2_000], architecture: "amd64", os: "linux" },
        { layerSizes: [2_000], architecture: "arm64", os: "linux", variant: "v8" },
      ]);
      layout.tag(multi.index, "multi");
      await layout.finish();
      for (const tag of ["v1", "multi"]) {
        await skopeo.run([
          "copy",
          "--all",
          "--dest-tls-verify=false",
          "--dest-creds",
          `root:${password}`,
          `oci:${layoutDir}:${tag}`,
          `docker://${cluster.host("westus")}/team/web:${tag}`,
        ]);
      }
      await pushSignature(image.manifest);
      await cluster.waitConverged("team/web", [...regions, newRegion], 60_000);

      await portal("repositories");
      await page.getByLabel("Search repositories").fill("web");
      await page.getByRole("button", { name: "team/web" }).click();
      const row = page.locator('tr[data-tag="v1"]');
      await row.waitFor();
      for (const region of [...regions, newRegion]) {
        await row
          .locator(`[data-region="${region}"][data-visibility="visible"]`)
          .waitFor({ timeout: 30_000 });
      }
      await row.getByRole("button", { name: "View manifest of v1" }).click();
      await page.getByRole("heading", { name: "Layers" }).waitFor();
      await page.getByText("linux/amd64").waitFor();
      await page.getByText(signatureType).waitFor();
      await page.screenshot({ path: join(docs, "portal-repository.png"), fullPage: true });

      // An index: its platforms, each of which opens as a manifest of its own.
      await page.getByRole("button", { name: "View manifest of multi" }).click();
      const arm = page.getByRole("row", { name: /linux\/arm64\/v8/ });
      await arm.getByRole("button", { name: /^Open/ }).click();
      await page.getByRole("heading", { name: "Layers" }).waitFor();
      await page.getByText("linux/arm64").waitFor();

      // A tag deleted from the portal goes (after its confirmation).
      await page.getByRole("button", { name: "Delete tag multi" }).click();
      await page.getByRole("dialog").getByRole("button", { name: "Delete", exact: true }).click();
      await page.locator('tr[data-tag="multi"]').waitFor({ state: "detached" });
      const tags = await fetch(`${cluster.url("westus")}/v2/team/web/tags/list`, {
        headers: { Authorization: basic },
      });
      assert.deepEqual(((await tags.json()) as { tags: string[] }).tags, ["v1"]);
      noProblems("on the repositories page");
    },
  );

  clusterTest(
    "routing is toggled and the home replica's delete is refused with the reason",
    async () => {
      await portal("replications");
      // Each region's stored bytes (the usage API) beside its replication.
      await page
        .locator('tr[data-replication="eastus"] td[data-stored]:not([data-stored="-"])')
        .waitFor();
      const routing = page.getByRole("switch", { name: "Routing for eastus" });
      await routing.waitFor();
      assert.equal(await routing.isChecked(), true);
      await routing.click();
      await waitFor(
        async () =>
          (await replications()).find((r) => r.name === "eastus")?.regionEndpointEnabled === false,
        "eastus's routing off",
        15_000,
        100,
      );
      // A locator, not waitForFunction: the page's CSP forbids the eval that polling needs.
      await page.locator('input[aria-label="Routing for eastus"]:not(:checked)').waitFor();
      await routing.click();
      await waitFor(
        async () =>
          (await replications()).find((r) => r.name === "eastus")?.regionEndpointEnabled === true,
        "eastus's routing on again",
        15_000,
        100,
      );

      expectedFailures.push(/\/_meridian\/admin\/replications\/westus$/);
      await page.getByRole("button", { name: "Delete westus" }).click();
      await page.getByRole("dialog").getByRole("button", { name: "Delete", exact: true }).click();
      await page.getByRole("alert").filter({ hasText: "home replica" }).waitFor();
      await page.getByRole("button", { name: "Cancel" }).click();
      assert.ok(
        (await replications()).some((r) => r.name === "westus"),
        "the home replica stays",
      );
      noProblems("on the replications page");
    },
  );

  clusterTest(
    "the webhooks and health pages open, also through the global endpoint and on a phone",
    async () => {
      await portal("webhooks");
      await page.getByRole("heading", { name: "Webhooks" }).waitFor();
      await page.getByRole("button", { name: "New webhook" }).click();
      await page.getByLabel("Name").fill("deploy");
      await page.getByLabel("URI").fill("http://127.0.0.1:9/hook");
      await page.getByRole("button", { name: "Save" }).click();
      await page.getByRole("button", { name: "Disable deploy" }).click();
      await page.getByRole("button", { name: "Enable deploy" }).waitFor();

      const openedHealthAt = Date.now();
      await portal("health");
      await page.getByRole("heading", { name: "Replication health" }).waitFor();
      await page.getByRole("rowheader", { name: newRegion }).first().waitFor();
      await page.getByRole("heading", { name: /Repairs and refusals on westus/ }).waitFor();
      // The chart's hour is kept by the replica: samples taken before the page opened.
      const history = (await page.evaluate(() =>
        fetch("/portal/api/lag-history").then((r) => r.json()),
      )) as { at: number; lag: Record<string, number> }[];
      assert.ok(history.length > 0, "the replica has sampled the lag");
      // Served by westus: the lag of each peer it follows.
      assert.ok(history.some((s) => "eastus" in s.lag && "westeurope" in s.lag));
      assert.ok((history[0]?.at ?? Date.now()) < openedHealthAt, "samples predate the page");

      // Through the global endpoint: the same cookie (same host) and the same pages.
      await portal("map", globalUrl);
      await page.locator(`[data-region="${newRegion}"][data-status="Ready"]`).waitFor();

      await page.setViewportSize({ width: 390, height: 844 });
      for (const hash of ["map", "replications", "repositories", "webhooks", "health"]) {
        await portal(hash);
        await page.getByRole("heading", { level: 1 }).waitFor();
        await page.getByRole("button", { name: "Log out" }).waitFor();
        const width = Number(await page.evaluate("document.documentElement.scrollWidth"));
        const widest = await page.evaluate(
          "[...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > 392).slice(0, 5).map((e) => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right)).join(', ')",
        );
        assert.ok(
          width <= 390,
          `the ${hash} page fits a 390-pixel screen (${width} px wide; past it: ${widest})`,
        );
      }
      await page.setViewportSize({ width: 1280, height: 800 });
      noProblems("on the other pages");
    },
  );
});
