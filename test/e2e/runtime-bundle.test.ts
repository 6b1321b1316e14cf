// End-to-end: the `meridian` command runs from a bundle of src/ that it finds by its inputs
// or builds in a child process, so a replica started as `meridian serve` never holds esbuild.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { appendFile, cp, mkdtemp, rm, stat, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { startReplicaProcess } from "../../src/cluster/replica-process.ts";

const run = promisify(execFile);
const bin = fileURLToPath(new URL("../../bin/meridian.js", import.meta.url));
const bundleModule = fileURLToPath(new URL("../../bin/runtime-bundle.mjs", import.meta.url));
const reportImports = fileURLToPath(new URL("../support/report-imports.mjs", import.meta.url));

it("the same tree gives the same bundle, from any process", async () => {
  const print = `import(${JSON.stringify(bundleModule)}).then((m) => m.runtimeBundle()).then(console.log)`;
  const first = (await run(process.execPath, ["-e", print])).stdout.trim();
  const second = (await run(process.execPath, ["-e", print])).stdout.trim();
  assert.equal(second, first);
  assert.match(first, /node_modules\/\.cache\/meridian\/bundle-[0-9a-f]{16}\/meridian\.mjs$/);
  assert.ok((await stat(first)).isFile());
});

it("a meridian process does not load esbuild to find or build its bundle", async () => {
  const { stdout, stderr } = await run(process.execPath, [
    "--import",
    reportImports,
    bin,
    "--help",
  ]);
  assert.match(stdout, /serve/);
  const imports = stderr.split("\n").filter((line) => line.startsWith("import: "));
  // The hook sees the process's own imports: the bundle and its packages.
  assert.ok(
    imports.some((line) => line.includes("meridian.mjs")),
    stderr,
  );
  assert.deepEqual(
    imports.filter((line) => line.includes("esbuild")),
    [],
  );
});

it("a tree that does not build gets esbuild's message in one line and exit code 1", async () => {
  const tree = await mkdtemp(join(tmpdir(), "meridian-tree-"));
  const repository = fileURLToPath(new URL("../../", import.meta.url));
  try {
    for (const part of ["bin", "src", "tsconfig.json", "package.json"]) {
      await cp(join(repository, part), join(tree, part), { recursive: true });
    }
    await symlink(join(repository, "node_modules"), join(tree, "node_modules"));
    await appendFile(join(tree, "src", "code-unit-order.ts"), "export const broken = ;\n");
    const failed = await run(process.execPath, [join(tree, "bin", "meridian.js"), "--help"]).then(
      () => undefined,
      (error: { code?: number; stderr?: string }) => error,
    );
    assert.equal(failed?.code, 1);
    assert.match(
      failed?.stderr ?? "",
      /^meridian: building the runtime bundle failed: .*src\/code-unit-order\.ts:\d+:\d+: ERROR: .*\n$/,
    );
    assert.equal(failed?.stderr?.split("\n").length, 2, "one line");
  } finally {
    await rm(tree, { recursive: true, force: true });
  }
});

it("a replica builds its portal without loading esbuild", async () => {
  const data = await mkdtemp(join(tmpdir(), "meridian-portal-"));
  const imports: string[] = [];
  const replica = await startReplicaProcess({
    args: ["--listen", "127.0.0.1:0", "--data", data],
    env: { MERIDIAN_LOG_LEVEL: "warn", NODE_OPTIONS: `--import ${reportImports}` },
    onLine: (line) => {
      if (line.startsWith("import: ")) imports.push(line);
    },
  });
  try {
    const page = await fetch(`${replica.url}/portal/assets/app.js`);
    assert.equal(page.status, 200);
    assert.ok((await page.text()).length > 1000);
    assert.ok(imports.length > 0, "the hook reports the replica's imports");
    assert.deepEqual(
      imports.filter((line) => line.includes("esbuild")),
      [],
    );
  } finally {
    await replica.stop();
    await rm(data, { recursive: true, force: true });
  }
});
