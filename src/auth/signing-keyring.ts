// The keys that sign and check bearer tokens. The configured `auth.signingKey` (kid
// "config") is the base; keys made by the home replica are control-plane records that
// replicate to every replica, so that every region checks what any region signed. New
// tokens are signed with the newest key (its kid in the JWT header); a token signed with
// an older key stays valid until it expires, as long as that key is kept. A token without
// a kid predates rotation and was signed with the configured key.
import { randomBytes } from "node:crypto";
import { byCodeUnits } from "../code-unit-order.ts";

export const signingKeyKind = "signing-key";
export const configKid = "config";

export interface SigningKeyRecord {
  kid: string;
  /** Hex; at least 32 bytes. */
  key: string;
  createdAt: string;
}

export class SigningKeyring {
  private records: SigningKeyRecord[] = [];
  private readonly base: Uint8Array;
  private readonly encoder = new TextEncoder();

  /** `configured`: auth.signingKey, when given; otherwise a key of this process alone. */
  constructor(private readonly configured: string | undefined) {
    this.base = this.encoder.encode(configured ?? randomBytes(32).toString("hex"));
  }

  /** Replaces the recorded keys (the control records changed). */
  useRecords(records: readonly SigningKeyRecord[]): void {
    this.records = [...records].sort((a, b) => byCodeUnits(a.createdAt, b.createdAt));
  }

  /** Whether tokens signed here are good in every replica (a shared key exists). */
  get shared(): boolean {
    return this.configured !== undefined || this.records.length > 0;
  }

  /** The key new tokens are signed with. */
  current(): { kid: string; key: Uint8Array } {
    const newest = this.records.at(-1);
    return newest
      ? { kid: newest.kid, key: this.encoder.encode(newest.key) }
      : { kid: configKid, key: this.base };
  }

  /** The key a token names; undefined for a kid this replica does not hold (any more). */
  lookup(kid: string | undefined): Uint8Array | undefined {
    if (kid === undefined || kid === configKid) return this.base;
    const record = this.records.find((r) => r.kid === kid);
    return record ? this.encoder.encode(record.key) : undefined;
  }

  /** The recorded keys, oldest first, without their material. */
  list(): { kid: string; createdAt: string; current: boolean }[] {
    const current = this.current().kid;
    return this.records.map((r) => ({
      kid: r.kid,
      createdAt: r.createdAt,
      current: r.kid === current,
    }));
  }
}

/** A new key record: random material and a kid that sorts by creation. */
export function newSigningKey(now: Date = new Date()): SigningKeyRecord {
  return {
    kid: `k${now.getTime().toString(36)}${randomBytes(3).toString("hex")}`,
    key: randomBytes(32).toString("hex"),
    createdAt: now.toISOString(),
  };
}
