// End-to-end: `meridian apply -f` against a two-region registry. The first apply makes the
// registry match the file (a replica's routing, a token, a webhook, an admin user) and
// prints each change; the second changes nothing; `--dry-run` prints a plan and changes
// nothing; a user the file makes can push in the other region at once.
// Owns: this file. Helpers: test/support/cluster.ts.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe } from "node:test";
import { fileURLToPath } from "node:url";
import { parse as parseYaml, stringify as toYaml } from "yaml";
import { hashSecret } from "../../src/auth/password-hash.ts";
import {
  clusterTest as clusterTestOf,
  startTestCluster,
  type TestCluster,
} from "../support/cluster.ts";
import { waitFor } from "../support/wait-for.ts";

const bin = fileURLToPath(new URL("../../bin/meridian.js", import.meta.url));
const password = "apply-admin-password";

describe("meridian apply -f", () => {
  let cluster: TestCluster;
  let file = "";
  const clusterTest = (name: string, body: () => Promise<void>) =>
    clusterTestOf(() => cluster, name, body);

  const meridian = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [bin, ...args],
        {
          env: {
            ...process.env,
            MERIDIAN_CONFIG_DIR: join(cluster.dir, "cli"),
            MERIDIAN_USERNAME: "ops",
            MERIDIAN_PASSWORD: password,
            WEBHOOK_SECRET: "a-signing-secret",
          },
          timeout: 60_000,
        },
        (error, stdout, stderr) =>
          resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
      );
    });

  before(async () => {
    cluster = await startTestCluster({ regions: ["westus", "eastus"] });
    const desired = parseYaml(await readFile(cluster.configFile, "utf8")) as {
      replicas: { region: string; globalEndpointRouting?: boolean }[];
      [key: string]: unknown;
    };
    for (const replica of desired.replicas) {
      if (replica.region === "eastus") replica.globalEndpointRouting = false;
    }
    const grant = [{ repositories: "team/**", actions: ["pull", "push"] }];
    desired.auth = {
      users: [
        { name: "ops", passwordHash: await hashSecret(password), admin: true, permissions: [] },
      ],
      tokens: [{ name: "ci", secretHash: await hashSecret("ci-token-secret"), permissions: grant }],
    };
    desired.webhooks = {
      hooks: [
        {
          name: "deploy",
          uri: "http://127.0.0.1:9/hook",
          actions: ["push"],
          secretEnv: "WEBHOOK_SECRET",
        },
      ],
    };
    file = join(cluster.dir, "desired.yaml");
    await writeFile(file, toYaml(desired));
  });
  after(async () => {
    await cluster?.dispose();
  });

  clusterTest("makes the registry match the file, then changes nothing", async () => {
    const first = await meridian(["apply", "-f", file]);
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(first.stdout.trim().split("\n"), [
      "create user ops",
      "update replica eastus (regionEndpointEnabled true -> false)",
      "create token ci",
      "create webhook deploy",
      "4 changes made",
    ]);
    const again = await meridian(["apply", "-f", file]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout, "no changes\n");
    // The user the file made logs in in the other region at once.
    const basic = `Basic ${Buffer.from(`ops:${password}`).toString("base64")}`;
    await waitFor(
      async () =>
        (await fetch(`${cluster.url("eastus")}/v2/`, { headers: { Authorization: basic } }))
          .status === 200,
      "the user to reach eastus",
      20_000,
      100,
    );
    const routing = await cluster.status("eastus");
    assert.equal(routing.globalEndpointRouting, false);
  });

  clusterTest("--dry-run prints the plan and changes nothing", async () => {
    const desired = parseYaml(await readFile(file, "utf8")) as {
      auth: { tokens: unknown[] };
    };
    desired.auth.tokens = [];
    const dropped = join(cluster.dir, "without-token.yaml");
    await writeFile(dropped, toYaml(desired));
    const plan = await meridian(["apply", "-f", dropped, "--dry-run"]);
    assert.equal(plan.code, 0, plan.stderr);
    assert.equal(plan.stdout, "would delete token ci\n1 change planned\n");
    const tokens = await meridian(["token", "list", "--registry", cluster.url("westus")]);
    assert.match(tokens.stdout, /\bci\b/);
    const bad = await meridian(["apply", "-f", join(cluster.dir, "missing.yaml")]);
    assert.equal(bad.code, 1);
    assert.equal(bad.stderr.trim().split("\n").length, 1, bad.stderr);
  });
});
