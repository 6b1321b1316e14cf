import assert from "node:assert/strict";
import { test } from "node:test";
import { LagHistory } from "./lag-history.ts";

test("keeps an hour of lag samples, oldest first, and skips samples that fail", async () => {
  let now = 1_000_000;
  let lag = 0;
  let failing = false;
  const history = new LagHistory({
    sample: async () => {
      if (failing) throw new Error("unreachable");
      return { westus: 0, eastus: lag };
    },
    now: () => now,
  });
  await history.takeSample();
  now += 30 * 60_000;
  lag = 2;
  await history.takeSample();
  failing = true;
  await history.takeSample();
  assert.deepEqual(
    history.samples().map((s) => s.lag.eastus),
    [0, 2],
  );
  now += 40 * 60_000;
  assert.deepEqual(
    history.samples().map((s) => s.at),
    [1_000_000 + 30 * 60_000],
    "a sample older than an hour leaves",
  );
});
