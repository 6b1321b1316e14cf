import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatBytes } from "./format-bytes.ts";
import { ImportProgressView, type JobView, summary, terminalLines } from "./import-progress.ts";

const job = (state: JobView["state"], bytesDone: number, blobsDone: number): JobView => ({
  id: "j1",
  state,
  source: "h.io/a:b",
  image: "a:b",
  digest: "sha256:abc",
  progress: {
    blobsDone,
    blobsTotal: 3,
    bytesDone,
    bytesTotal: 4 * 1024 * 1024,
    blobsSkipped: 1,
    bytesTransferred: 3 * 1024 * 1024,
    throttled: 0,
    active: [{ digest: `sha256:${"f".repeat(64)}`, size: 2 * 1024 * 1024, bytesDone: 1024 * 1024 }],
  },
});

describe("import progress", () => {
  it("draws a bar of bytes and blobs with a line per blob streaming", () => {
    const [head, layer] = terminalLines(job("running", 2 * 1024 * 1024, 1));
    assert.equal(head, `[${"#".repeat(15)}${".".repeat(15)}]  50%  2.0 MiB / 4.0 MiB  blobs 1/3`);
    assert.equal(layer, "  sha256:ffffffffffff  1.0 MiB / 2.0 MiB");
  });

  it("redraws in place on a terminal, and writes a plain line per step elsewhere", () => {
    const written: string[] = [];
    const tty = new ImportProgressView({ write: (t) => written.push(t) }, true);
    tty.show(job("running", 0, 0));
    tty.show(job("running", 1024, 0));
    assert.ok(written[1]?.startsWith("\x1b[2A\r\x1b[J"));

    const plain: string[] = [];
    const log = new ImportProgressView({ write: (t) => plain.push(t) }, false);
    log.show(job("running", 0, 0));
    log.show(job("running", 1024, 0));
    log.show(job("running", 4096, 1));
    log.show(job("succeeded", 4 * 1024 * 1024, 3));
    assert.deepEqual(plain, [
      "import j1: running, blobs 0/3, 0 B / 4.0 MiB\n",
      "import j1: running, blobs 1/3, 4.0 KiB / 4.0 MiB\n",
      "import j1: succeeded, blobs 3/3, 4.0 MiB / 4.0 MiB\n",
    ]);
  });

  it("sums a finished import up in one line", () => {
    assert.equal(
      summary(job("succeeded", 0, 3)),
      "imported h.io/a:b as a:b (sha256:abc): 3 blobs, 3.0 MiB copied, 1 already present",
    );
    assert.equal(formatBytes(1536), "1.5 KiB");
    assert.equal(formatBytes(5 * 1024 ** 3), "5.0 GiB");
  });
});
