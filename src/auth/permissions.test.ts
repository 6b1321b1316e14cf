import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { allowedActions, matchesPattern, type Principal } from "./permissions.ts";

const principal = (grants: Principal["grants"], admin = false): Principal => ({
  kind: "user",
  name: "p",
  id: "p",
  admin,
  grants,
});

describe("repository patterns", () => {
  it("matches `*` within one path component only", () => {
    assert.equal(matchesPattern("team/*", "team/app"), true);
    assert.equal(matchesPattern("team/*", "team/app/sub"), false);
    assert.equal(matchesPattern("team/*", "team"), false);
    assert.equal(
      matchesPattern("team/*", "team/"),
      true,
      "an empty component (names never have one)",
    );
    assert.equal(matchesPattern("*/app", "team/app"), true);
    assert.equal(matchesPattern("*/app", "a/b/app"), false);
    assert.equal(matchesPattern("team/app-*", "team/app-web"), true);
    assert.equal(matchesPattern("team/app-*", "team/api-web"), false);
  });

  it("matches `**` across components", () => {
    assert.equal(matchesPattern("team/**", "team/app"), true);
    assert.equal(matchesPattern("team/**", "team/a/b/c"), true);
    assert.equal(matchesPattern("team/**", "team"), false);
    assert.equal(matchesPattern("team/**", "teammate/app"), false);
    assert.equal(matchesPattern("**", "anything/at/all"), true);
    assert.equal(matchesPattern("**/app", "x/y/app"), true);
    assert.equal(matchesPattern("**/app", "x/y/apps"), false);
  });

  it("treats every other character literally", () => {
    assert.equal(matchesPattern("team/app", "team/app"), true);
    assert.equal(matchesPattern("team/app", "team/app2"), false);
    assert.equal(matchesPattern("a.b", "axb"), false);
    assert.equal(matchesPattern("a+b", "aab"), false);
    assert.equal(matchesPattern("(a|b)", "a"), false);
    assert.equal(matchesPattern("a.b", "a.b"), true);
  });
});

describe("allowed actions", () => {
  it("grants the union of every matching grant, and only what was asked", () => {
    const p = principal([
      { repositories: "team/**", actions: ["pull"] },
      { repositories: "team/app", actions: ["push"] },
      { repositories: "other/*", actions: ["delete"] },
    ]);
    assert.deepEqual(allowedActions(p, "team/app", ["pull", "push", "delete"]), ["pull", "push"]);
    assert.deepEqual(allowedActions(p, "team/web", ["pull", "push"]), ["pull"]);
    assert.deepEqual(allowedActions(p, "team/app", ["push"]), ["push"]);
    assert.deepEqual(allowedActions(p, "other/x", ["pull", "delete"]), ["delete"]);
    assert.deepEqual(allowedActions(p, "nowhere", ["pull"]), []);
  });

  it("grants an admin everything asked, and a principal without grants nothing", () => {
    assert.deepEqual(allowedActions(principal([], true), "any/repo", ["pull", "delete"]), [
      "pull",
      "delete",
    ]);
    assert.deepEqual(allowedActions(principal([]), "any/repo", ["pull"]), []);
  });
});
