/**
 * The ledger secrets a node knows. Each secret is named by its version: the seqno from which it
 * encrypts the private domain (0 for the service's first secret). After a rotation the node still
 * needs the older secrets to read older entries, so the set only grows.
 */
import { checkU64, compareBytes } from "./bytes.ts";
import { LedgerError } from "./errors.ts";

export const SECRET_LENGTH = 32;

export interface LedgerSecret {
  version: number;
  key: Uint8Array;
}

export class LedgerSecrets {
  private readonly byVersion = new Map<number, Uint8Array>();

  constructor(secrets: ReadonlyArray<LedgerSecret> = []) {
    for (const secret of secrets) this.add(secret.version, secret.key);
  }

  /** Adding the same secret twice is harmless; a different key under a known version is an error. */
  add(version: number, key: Uint8Array): void {
    checkU64(version, "ledger secret version");
    if (!(key instanceof Uint8Array) || key.length !== SECRET_LENGTH) {
      throw new LedgerError(`ledger secret ${version} must be ${SECRET_LENGTH} bytes`);
    }
    const known = this.byVersion.get(version);
    if (known) {
      if (compareBytes(known, key) !== 0) {
        throw new LedgerError(`ledger secret ${version} is already known with a different key`);
      }
      return;
    }
    // A private copy, so a caller reusing its buffer cannot change a secret under us.
    this.byVersion.set(version, Uint8Array.from(key));
  }

  has(version: number): boolean {
    return this.byVersion.has(version);
  }

  get(version: number): Uint8Array {
    const key = this.byVersion.get(version);
    if (!key) throw new LedgerError(`ledger secret version ${version} is not known to this node`);
    return key;
  }

  /** The newest secret: the one new entries are encrypted with. */
  get current(): LedgerSecret {
    let best: LedgerSecret | undefined;
    for (const [version, key] of this.byVersion) {
      if (!best || version > best.version) best = { version, key };
    }
    if (!best) throw new LedgerError("no ledger secret is known");
    return best;
  }

  /**
   * The secret in effect at `seqno`: the newest one whose version is not after it. Snapshots use
   * this rather than `current`, so every node encrypts a snapshot of the same seqno identically.
   */
  forSeqno(seqno: number): LedgerSecret {
    let best: LedgerSecret | undefined;
    for (const [version, key] of this.byVersion) {
      if (version <= seqno && (!best || version > best.version)) best = { version, key };
    }
    if (!best) throw new LedgerError(`no ledger secret is in effect at seqno ${seqno}`);
    return best;
  }

  /** All secrets, oldest first. */
  list(): LedgerSecret[] {
    return [...this.byVersion.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([version, key]) => ({ version, key }));
  }
}
