// End-to-end: `meridian serve` on an address it cannot take says so in one line and exits,
// instead of a stack trace.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { fileURLToPath } from "node:url";

const bin = fileURLToPath(new URL("../../bin/meridian.js", import.meta.url));

it("meridian serve on a port in use prints one line and exits with 1", async () => {
  const dir = await mkdtemp(join(tmpdir(), "meridian-serve-"));
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
  const { port } = busy.address() as AddressInfo;
  try {
    const child = spawn(
      process.execPath,
      [bin, "serve", "--listen", `127.0.0.1:${port}`, "--data", dir],
      { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, MERIDIAN_LOG_LEVEL: "warn" } },
    );
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const [code] = await once(child, "exit");
    assert.equal(code, 1, stderr);
    assert.equal(stderr, `meridian: cannot listen on 127.0.0.1:${port}: address already in use\n`);
  } finally {
    busy.close();
    await rm(dir, { recursive: true, force: true });
  }
});
