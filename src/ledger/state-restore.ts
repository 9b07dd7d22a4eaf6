import { coseVerifySign1 } from "../crypto/index.ts";
import { Store } from "../kv/index.ts";
import { type DecodedEntry, EntryType } from "./entry.ts";
import { LedgerStateError } from "./errors.ts";
import type { SignedRoot } from "./receipts.ts";
import type { LedgerSecrets } from "./secrets.ts";
import type { DecodedSnapshot } from "./snapshot-adopt.ts";
import type { LedgerEnvironment, LedgerSink, SigningKeys } from "./state-base.ts";
import { LedgerSnapshots } from "./state-snapshots.ts";

/** What a node restarts from: its durable entries and perhaps a snapshot (`LedgerState.restore`). */
export interface RestoreOptions {
  env: LedgerEnvironment;
  keys: SigningKeys;
  secrets: LedgerSecrets;
  sink: LedgerSink;
  entries: DecodedEntry[];
  snapshot?: DecodedSnapshot;
  /** Where the ledger on disk starts (1 unless the node started from a snapshot). */
  ledgerStart?: number;
  /** Needed to check a snapshot's anchor: the service signs the Merkle root it continues from. */
  serviceCertPem?: string;
  /** A commit point this node saw before it stopped (a lower bound is fine). */
  commitSeqno?: number;
}

/** What disaster recovery rebuilds the public state from (`LedgerState.restorePublic`). */
export interface RestorePublicOptions {
  env: LedgerEnvironment;
  keys: SigningKeys;
  secrets: LedgerSecrets;
  sink: LedgerSink;
  entries: DecodedEntry[];
  previousServiceCertPem: string;
}

/** Appends one checked entry to the state (the apply path, `LedgerState.applyEntry`). */
export type ApplyEntry = (entry: DecodedEntry, applyToStore: boolean) => void;

/** Appends one entry's public half; returns the signature it carries, if it is a signature entry. */
export type ApplyPublicEntry = (entry: DecodedEntry) => SignedRoot | undefined;

/** The view a restarted state starts in: its last entry's (or its snapshot's). */
export function restoredView(opts: RestoreOptions): number {
  return opts.entries.at(-1)?.view ?? opts.snapshot?.view ?? 0;
}

/** The entry recovery ends at, once it is known the ledger given is whole and ends at a signature. */
export function recoverableEnd(entries: readonly DecodedEntry[]): DecodedEntry {
  if (entries.length === 0 || entries[0]!.seqno !== 1) {
    throw new LedgerStateError("recovery needs the whole ledger, from seqno 1");
  }
  const last = entries.at(-1)!;
  if (last.type !== EntryType.Signature) {
    throw new LedgerStateError(
      `the ledger must end at a signature for recovery; seqno ${last.seqno} is not one`,
    );
  }
  return last;
}

/**
 * The ledger state's fourth layer (see state-base.ts): a fresh state rebuilt from a node's files,
 * on restart and in disaster recovery. Each entry goes through the apply path it is given, so it
 * is checked as a backup checks what it receives.
 */
export class LedgerRestore extends LedgerSnapshots {
  /** Replays a restarting node's entries (and snapshot) into this fresh state. */
  protected replay(opts: RestoreOptions, apply: ApplyEntry): void {
    const { entries, snapshot } = opts;
    const ledgerStart = opts.ledgerStart ?? entries[0]?.seqno ?? 1;
    if (ledgerStart > 1) {
      const at = snapshot?.snapshot.version ?? 0;
      if (!snapshot || at < ledgerStart - 1 || at > (entries.at(-1)?.seqno ?? ledgerStart - 1)) {
        throw new LedgerStateError(
          `the ledger starts at seqno ${ledgerStart} but there is no usable snapshot from ${ledgerStart - 1} on`,
        );
      }
      this.adoptSnapshot(snapshot, opts.serviceCertPem);
      for (const entry of entries) if (entry.seqno > at) apply(entry, true);
    } else {
      if (snapshot) this._store = Store.fromSnapshot(snapshot.snapshot);
      this.startConfig = snapshot ? this.trustedNodes() : [];
      for (const entry of entries) {
        apply(entry, !snapshot || entry.seqno > snapshot.snapshot.version);
      }
      if (snapshot && snapshot.snapshot.version > this.lastSeqno) {
        throw new LedgerStateError(
          `snapshot at ${snapshot.snapshot.version} is ahead of the ledger (${this.lastSeqno})`,
        );
      }
    }
    // Only what is known to have committed counts as committed: the last signature at or before
    // the remembered commit point. The rest is this node's log; consensus decides its fate.
    const known = Math.max(opts.commitSeqno ?? 0, snapshot?.snapshot.version ?? 0);
    this._commitSeqno =
      [...this.signatureSeqnos].reverse().find((s) => s <= known) ?? snapshot?.snapshot.version ?? 0;
    this.store.compact(this._commitSeqno);
    this.archiveOldProofs();
  }

  /**
   * Replays the public half of a whole ledger (checked by `recoverableEnd`) into this fresh
   * state, checking each signature's COSE signature against the previous service certificate.
   */
  protected replayPublic(opts: RestorePublicOptions, apply: ApplyPublicEntry): void {
    const last = opts.entries.at(-1)!;
    for (const entry of opts.entries) {
      const signature = apply(entry);
      if (
        signature &&
        !coseVerifySign1(signature.cose, opts.previousServiceCertPem, this.tree.root(entry.seqno - 1))
      ) {
        throw new LedgerStateError(
          `seqno ${entry.seqno}: the root is not signed by the previous service certificate given`,
        );
      }
    }
    this._commitSeqno = last.seqno;
    this.store.compact(last.seqno);
  }
}
