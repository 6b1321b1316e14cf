import assert from "node:assert/strict";
import { it } from "node:test";
import { byCodeUnits } from "./code-unit-order.ts";

it("orders by code units, whatever the locale would say", () => {
  // A locale-aware order would put "a" before "B" and "é" beside "e".
  assert.deepEqual(["e", "b", "é", "a", "_x", "B"].sort(byCodeUnits), [
    "B",
    "_x",
    "a",
    "b",
    "e",
    "é",
  ]);
  assert.equal(byCodeUnits("westus", "westus"), 0);
});
