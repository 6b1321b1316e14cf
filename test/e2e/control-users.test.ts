// Users as control-plane records across three regions (westus home, eastus, westeurope):
// a user added through the admin API of any replica is written by the home replica,
// replicates, and can log in and push in every region without a restart, and after a
// restart of every process; a write while the home replica is cut off fails with 503
// naming it while pushes go on; a deleted user can no longer log in anywhere.
// Owns: this file. Helpers: test/support/{cluster,oci-fixtures,wait-for}.ts.
import assert from "node:assert/strict";
import { after, before, describe } from "node:test";
import {
  clusterTest as clusterTestOf,
  startTestCluster,
  type TestCluster,
} from "../support/cluster.ts";
import { randomBlob } from "../support/oci-fixtures.ts";
import { waitFor } from "../support/wait-for.ts";

const regions = ["westus", "eastus", "westeurope"] as const;
const [west, east, europe] = regions;
const basic = (name: string, password: string) =>
  `Basic ${Buffer.from(`${name}:${password}`).toString("base64")}`;
const root = basic("root", "root-password-1");
const alice = basic("alice", "alice-password-1");

describe("users as replicated control-plane records", () => {
  let cluster: TestCluster;
  const clusterTest = (name: string, body: () => Promise<void>): void =>
    clusterTestOf(() => cluster, name, body);

  const admin = async (
    region: string,
    method: string,
    path: string,
    body?: unknown,
    authorization = root,
  ) => {
    const response = await fetch(`${cluster.url(region)}/_meridian/admin/${path}`, {
      method,
      headers: { Authorization: authorization, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
    return { status: response.status, body: await response.text() };
  };

  /** A monolithic blob push as `authorization`; the status. */
  const pushAs = async (region: string, authorization: string, repository: string) => {
    const blob = randomBlob(256);
    const response = await fetch(
      `${cluster.url(region)}/v2/${repository}/blobs/uploads/?digest=${blob.digest}`,
      {
        method: "POST",
        headers: { Authorization: authorization, "Content-Type": "application/octet-stream" },
        body: blob.bytes,
        signal: AbortSignal.timeout(15_000),
      },
    );
    await response.arrayBuffer();
    return response.status;
  };

  const v2 = async (region: string, authorization?: string) =>
    (
      await fetch(`${cluster.url(region)}/v2/`, {
        headers: authorization ? { Authorization: authorization } : {},
        signal: AbortSignal.timeout(10_000),
      })
    ).status;

  const everywhere = (what: string, check: (region: string) => Promise<boolean>) =>
    waitFor(async () => (await Promise.all(regions.map(check))).every(Boolean), what, 30_000, 50);

  before(async () => {
    cluster = await startTestCluster({ regions, wan: { rttMs: 6 }, antiEntropySeconds: 3600 });
  });

  after(async () => {
    await cluster?.dispose();
  });

  clusterTest(
    "a user added through another region's API logs in and pushes everywhere",
    async () => {
      // No user yet: a loopback registry serves everyone, the admin API included.
      const created = await admin(east, "PUT", "users/root", {
        password: "root-password-1",
        admin: true,
      });
      assert.equal(created.status, 200, created.body);
      await everywhere("root's record in every region", async (r) => (await v2(r)) === 401);
      for (const region of regions) assert.equal(await v2(region, root), 200, region);

      const added = await admin(europe, "PUT", "users/alice", {
        password: "alice-password-1",
        permissions: [{ repositories: "team/**", actions: ["pull", "push"] }],
      });
      assert.equal(added.status, 200, added.body);
      await everywhere(
        "alice able to push in every region",
        async (r) => (await pushAs(r, alice, "team/app")) === 201,
      );
      assert.equal(await pushAs(east, alice, "other/app"), 403, "her grants hold");
      const listed = JSON.parse((await admin(europe, "GET", "users")).body) as {
        name: string;
        passwordHash?: string;
      }[];
      assert.deepEqual(listed.map((u) => u.name).sort(), ["alice", "root"]);
      assert.ok(
        listed.every((u) => u.passwordHash === undefined),
        "no hashes in the API",
      );
    },
  );

  clusterTest(
    "a token made through the API works in another region; its secret is shown once",
    async () => {
      const made = await admin(west, "PUT", "tokens/ci", {
        permissions: [{ repositories: "team/app", actions: ["pull", "push"] }],
      });
      assert.equal(made.status, 201, made.body);
      const { secret } = JSON.parse(made.body) as { secret: string };
      assert.ok(secret.length >= 24);
      await everywhere(
        "the token able to push in every region",
        async (r) => (await pushAs(r, basic("ci", secret), "team/app")) === 201,
      );
      assert.doesNotMatch((await admin(east, "GET", "tokens")).body, new RegExp(secret));
    },
  );

  clusterTest("a write while the home replica is cut off fails with 503 naming it", async () => {
    cluster.cluster.cut(europe, west);
    try {
      const refused = await admin(europe, "PUT", "users/bob", { password: "bob-password-1" });
      assert.equal(refused.status, 503, refused.body);
      assert.match(refused.body, /UNAVAILABLE/);
      assert.match(refused.body, /westus/);
      assert.equal(await pushAs(europe, alice, "team/app"), 201, "pushes go on");
    } finally {
      cluster.cluster.heal(europe, west);
    }
  });

  clusterTest("users survive a restart of every process, and a deleted one is gone", async () => {
    for (const region of regions) await cluster.cluster.replica(region).process.stop();
    for (const region of regions) await cluster.cluster.startReplica(region);
    for (const region of regions) {
      assert.equal(await pushAs(region, alice, "team/app"), 201, `alice in ${region}`);
    }
    const removed = await admin(west, "DELETE", "users/alice");
    assert.equal(removed.status, 204, removed.body);
    await everywhere("alice refused everywhere", async (r) => (await v2(r, alice)) === 401);
    assert.equal((await admin(east, "DELETE", "users/alice")).status, 404);
  });

  clusterTest("the admin API refuses a non-admin and a malformed body", async () => {
    const bad = await admin(west, "PUT", "users/carol", { password: "short" });
    assert.equal(bad.status, 400);
    assert.match(bad.body, /password/);
    await admin(west, "PUT", "users/dave", { password: "dave-password-1" });
    await everywhere(
      "dave everywhere",
      async (r) => (await v2(r, basic("dave", "dave-password-1"))) === 200,
    );
    const denied = await admin(
      east,
      "PUT",
      "users/eve",
      { password: "eve-password-1" },
      basic("dave", "dave-password-1"),
    );
    assert.equal(denied.status, 403, denied.body);
  });
});
