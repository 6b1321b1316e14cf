import assert from "node:assert/strict";
import { test } from "node:test";
import { TransferRate } from "./transfer-rate.ts";

test("measures the rate from the first second that saw bytes, over ten seconds at most", () => {
  let now = 1_000_000;
  const rate = new TransferRate(() => now);
  assert.equal(rate.bytesPerSecond(), 0);
  assert.equal(rate.secondsFor(100), undefined);
  rate.add(1000);
  now += 1000;
  rate.add(1000);
  assert.equal(rate.bytesPerSecond(), 1000);
  assert.equal(rate.secondsFor(2500), 3);
  assert.equal(rate.secondsFor(0), 0);
  now += 20_000;
  assert.equal(rate.bytesPerSecond(), 0, "old seconds leave the window");
});
