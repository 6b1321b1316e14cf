import assert from "node:assert/strict";
import { test } from "node:test";
import { fingerprintOf } from "./admin-api.ts";
import { type CurrentState, type DesiredState, planChanges } from "./desired-state.ts";

const hash = "scrypt$16384$8$1$c2FsdA$aGFzaA";
const grants = [{ repositories: "team/**", actions: ["push", "pull"] }];

const desired: DesiredState = {
  replicas: [
    { region: "westus", home: true, globalEndpointRouting: true },
    { region: "eastus", home: false, globalEndpointRouting: false },
  ],
  users: [{ name: "alice", passwordHash: hash, admin: false, permissions: grants }],
  tokens: [{ name: "ci", secretHash: hash, permissions: grants }],
  webhooks: [{ name: "deploy", uri: "http://127.0.0.1:9/", actions: ["push"], status: "enabled" }],
};

const matching: CurrentState = {
  replicas: [
    { name: "westus", home: true, regionEndpointEnabled: true },
    { name: "eastus", home: false, regionEndpointEnabled: false },
  ],
  users: [
    {
      name: "alice",
      admin: false,
      // The same grants in another order are the same grants.
      permissions: [{ repositories: "team/**", actions: ["pull", "push"] }],
      fingerprint: fingerprintOf(hash),
    },
  ],
  tokens: [{ name: "ci", permissions: grants, fingerprint: fingerprintOf(hash) }],
  webhooks: [
    {
      name: "deploy",
      uri: "http://127.0.0.1:9/",
      actions: ["push"],
      location: null,
      scope: null,
      status: "enabled",
    },
  ],
};

test("a registry that matches the file needs no change", () => {
  assert.deepEqual(planChanges(matching, desired), []);
});

test("creates what is missing, updates what differs, deletes what the file drops", () => {
  const current: CurrentState = {
    replicas: [
      { name: "westus", home: true, regionEndpointEnabled: true },
      { name: "eastus", home: false, regionEndpointEnabled: true },
      { name: "westeurope", home: false, regionEndpointEnabled: true },
    ],
    users: [{ name: "alice", admin: true, permissions: grants, fingerprint: "other" }],
    tokens: [{ name: "old", permissions: grants }],
    webhooks: [],
  };
  const plan = planChanges(current, desired).map(
    (c) => `${c.verb} ${c.kind} ${c.name}${c.detail ? ` (${c.detail})` : ""}`,
  );
  assert.deepEqual(plan, [
    "update user alice (password, admin)",
    "update replica eastus (regionEndpointEnabled true -> false)",
    "delete replica westeurope",
    "create token ci",
    "delete token old",
    "create webhook deploy",
  ]);
});

test("leaves alone a kind the file does not manage, and never plans to delete the home replica", () => {
  const plan = planChanges(
    { ...matching, users: [{ name: "bob", admin: true, permissions: [] }] },
    { replicas: [{ region: "eastus", home: false, globalEndpointRouting: false }] },
  );
  assert.deepEqual(plan, []);
});
