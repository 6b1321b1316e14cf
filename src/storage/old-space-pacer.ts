// Collects the JavaScript heap's old generation while large uploads stream, at a smaller
// growth than V8 would wait for.
//
// Every upload keeps a few objects alive across its writes and hash requests (promises,
// queue entries), long enough to be promoted; they die soon after, in the old generation.
// V8 collects it once it has grown by at least 8 MiB over what the last collection kept,
// which a 16 x 256 MiB bench run (8 s) never reaches and a 16 x 1 GiB run (50 s) does, at
// 0.2-0.3 MiB/s: the gap between the two peaks (bench `rss`, 2026-12-02: 97.6-99.2 MiB
// against 86.7-87.6 with chunks released, 12-13%). Collecting every 4 MiB of growth,
// checked every 32 MiB written, brought the two within 1-2% (see the README's benchmark
// section) for one forced collection about every 10 s of uploads, 8-15 ms each.
import { getHeapStatistics, setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

export interface HeapProbe {
  /** Bytes of the JavaScript heap in use, garbage included. */
  usedBytes(): number;
  /** Runs a full collection. */
  collect(): void;
}

/** The running process's heap; `gc` is exposed the first time it is needed. */
const processHeap: HeapProbe = {
  usedBytes: () => getHeapStatistics().used_heap_size,
  collect: () => {
    gc ??= exposeGc();
    gc();
  },
};
let gc: (() => void) | undefined;

function exposeGc(): () => void {
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as () => void;
}

export class OldSpacePacer {
  private sinceCheck = 0;
  /** The lowest heap seen at a check since the last collection: what was kept, roughly. */
  private baseline = Number.POSITIVE_INFINITY;
  private forced = 0;

  constructor(
    private readonly heap: HeapProbe = processHeap,
    private readonly checkEveryBytes = 32 * 1024 * 1024,
    private readonly growthBytes = 4 * 1024 * 1024,
  ) {}

  /** Told of every slot written to a file; now and then checks the heap and collects. */
  written(bytes: number): void {
    this.sinceCheck += bytes;
    if (this.sinceCheck < this.checkEveryBytes) return;
    this.sinceCheck = 0;
    const used = this.heap.usedBytes();
    this.baseline = Math.min(this.baseline, used);
    if (used - this.baseline < this.growthBytes) return;
    this.heap.collect();
    this.forced += 1;
    this.baseline = this.heap.usedBytes();
  }

  /** Collections this pacer forced. */
  get collections(): number {
    return this.forced;
  }
}

/** The process's pacer, shared by every upload. */
export const uploadPacer = new OldSpacePacer();
