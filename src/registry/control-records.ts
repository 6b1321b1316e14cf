// The control plane's records in this replica: users, tokens and the like, each a register
// per (kind, name) in the metadata store, written here with this replica's clock and
// replicated to every replica by the same feeds as images (the remote-apply path writes
// the others' records). Listeners hear of every change, local or remote.
import type { ControlRecord, MetadataStore } from "../metadata/metadata-store.ts";
import type { HybridClock } from "./hybrid-clock.ts";

export class ControlRecords {
  constructor(
    private readonly metadata: MetadataStore,
    private readonly clock: HybridClock,
  ) {}

  /** The live records of a kind (deleted ones left out), by name. */
  async list(kind: string): Promise<ControlRecord[]> {
    return (await this.metadata.controlRecords(kind)).filter((r) => r.value !== null);
  }

  /** Every register of a kind, deleted ones included (they override a bootstrap file). */
  registers(kind: string): Promise<ControlRecord[]> {
    return this.metadata.controlRecords(kind);
  }

  async get(kind: string, name: string): Promise<ControlRecord | undefined> {
    return (await this.list(kind)).find((r) => r.name === name);
  }

  /** Writes a record (its value as JSON text). */
  async put(kind: string, name: string, value: unknown): Promise<void> {
    await this.metadata.putControlRecord({
      kind,
      name,
      value: JSON.stringify(value),
      stamp: this.clock.next(),
    });
  }

  /** Deletes a record (a tombstone that replicates); false when there was none. */
  async delete(kind: string, name: string): Promise<boolean> {
    if (!(await this.get(kind, name))) return false;
    await this.metadata.putControlRecord({ kind, name, value: null, stamp: this.clock.next() });
    return true;
  }

  /** Calls `listener` with the kinds of control record that a commit changed. */
  onChange(listener: (kinds: ReadonlySet<string>) => void): () => void {
    return this.metadata.onCommit((changes) => {
      const kinds = new Set<string>();
      for (const change of changes) if (change.control) kinds.add(change.control.kind);
      if (kinds.size > 0) listener(kinds);
    });
  }
}
