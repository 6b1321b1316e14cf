import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ConfigError, loadConfig } from "./load-config.ts";

describe("loadConfig", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "meridian-config-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function file(name: string, text: string): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, text);
    return path;
  }

  /** The message of the ConfigError that loading throws. */
  async function failure(load: Promise<unknown>): Promise<string> {
    try {
      await load;
    } catch (error) {
      assert.ok(error instanceof ConfigError, String(error));
      return error.message;
    }
    assert.fail("the configuration was accepted");
  }

  it("takes the file, then environment variables, then flags", async () => {
    const path = await file("layers.yaml", "listen: 127.0.0.1:6001\ndata: ./from-file\n");
    const fromFile = await loadConfig({ file: path, env: {} });
    assert.equal(fromFile.listen, "127.0.0.1:6001");
    assert.equal(fromFile.data, "./from-file");
    const fromEnv = await loadConfig({
      file: path,
      env: { MERIDIAN_LISTEN: "127.0.0.1:6002", MERIDIAN_LOG_LEVEL: "debug" },
    });
    assert.equal(fromEnv.listen, "127.0.0.1:6002");
    assert.equal(fromEnv.log.level, "debug");
    const fromFlags = await loadConfig({
      file: path,
      env: { MERIDIAN_LISTEN: "127.0.0.1:6002" },
      flags: { listen: "127.0.0.1:6003", data: "./from-flag" },
    });
    assert.equal(fromFlags.listen, "127.0.0.1:6003");
    assert.equal(fromFlags.data, "./from-flag");
  });

  it("names every bad value with its path", async () => {
    const path = await file(
      "bad.yaml",
      "listen: nowhere\nlimits:\n  uploadsPerClient: -1\nauth:\n  signingKey: short\n",
    );
    const message = await failure(loadConfig({ file: path, env: {} }));
    assert.match(message, /listen: expected host:port/);
    assert.match(message, /limits\.uploadsPerClient/);
    assert.match(message, /auth\.signingKey: at least 32 characters/);
  });

  it("takes workers as auto or a count, from the file, the environment or the flag", async () => {
    assert.equal((await loadConfig({ env: {} })).workers, 1);
    assert.equal((await loadConfig({ env: { MERIDIAN_WORKERS: "auto" } })).workers, "auto");
    const flagged = await loadConfig({
      env: { MERIDIAN_WORKERS: "auto" },
      flags: { workers: "3" },
    });
    assert.equal(flagged.workers, 3);
    for (const bad of ["abc", "2.5"]) {
      const message = await failure(loadConfig({ env: {}, flags: { workers: bad } }));
      assert.match(message, /workers: expected auto or a whole number from 1 to 256/, bad);
    }
    const zero = await failure(loadConfig({ env: {}, flags: { workers: "0" } }));
    assert.match(zero, /workers: Number must be greater than or equal to 1/);
  });

  it("refuses unknown keys, a file that is not YAML, and a missing file", async () => {
    const unknown = await file("unknown.yaml", "listn: 127.0.0.1:5001\n");
    assert.match(await failure(loadConfig({ file: unknown, env: {} })), /listn/);
    const broken = await file("broken.yaml", "listen: [\n");
    assert.match(await failure(loadConfig({ file: broken, env: {} })), /not valid YAML/);
    assert.match(
      await failure(loadConfig({ file: join(dir, "absent.yaml"), env: {} })),
      /cannot read config file/,
    );
  });

  it("checks the topology: one home, known regions, a real global endpoint host", async () => {
    const path = await file(
      "topology.yaml",
      [
        "replicas:",
        "  - { region: westus, listen: 127.0.0.1:5001, data: ./w }",
        "  - { region: atlantis, listen: 127.0.0.1:5002, data: ./a }",
        "globalEndpoint:",
        "  hostedBy: [westus, mars]",
        "",
      ].join("\n"),
    );
    const message = await failure(loadConfig({ file: path, env: {} }, { topologyOnly: true }));
    assert.match(message, /exactly one replica must be home/);
    assert.match(message, /atlantis is not in the catalogue/);
    assert.match(message, /globalEndpoint\.hostedBy: mars is not one of the replicas/);
  });

  it("selects a replica of the topology by region, with its peers", async () => {
    const path = await file(
      "pair.yaml",
      [
        "replication: { secret: 0123456789abcdef0123 }",
        "replicas:",
        "  - { region: westus, home: true, listen: 127.0.0.1:5001, data: ./w }",
        "  - { region: eastus, listen: 127.0.0.1:5002, data: ./e }",
        "",
      ].join("\n"),
    );
    const east = await loadConfig({ file: path, env: {}, flags: { region: "eastus" } });
    assert.equal(east.listen, "127.0.0.1:5002");
    assert.deepEqual(east.peers, [{ region: "westus", url: "http://127.0.0.1:5001" }]);
    const home = await loadConfig({ file: path, env: {} });
    assert.equal(home.region, "westus");
  });

  it("takes trusted proxies as CIDRs or addresses, and names a bad one", async () => {
    const good = await file(
      "proxies.yaml",
      "limits:\n  trustedProxies: [10.0.0.0/8, 192.0.2.7, 'fd00::/8']\n",
    );
    const config = await loadConfig({ file: good, env: {} });
    assert.deepEqual(config.limits.trustedProxies, ["10.0.0.0/8", "192.0.2.7", "fd00::/8"]);
    for (const bad of ["10.0.0.0/33", "example.com", "10.0.0.0/8/1", "::1/129"]) {
      const path = await file("bad-proxies.yaml", `limits:\n  trustedProxies: ['${bad}']\n`);
      assert.match(
        await failure(loadConfig({ file: path, env: {} })),
        /limits\.trustedProxies/,
        bad,
      );
    }
  });
});
