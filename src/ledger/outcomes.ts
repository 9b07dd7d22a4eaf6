import type { JsonReceipt } from "../crypto/index.ts";

/** This node cannot create transactions now: another node is (or is becoming) primary. */
export class NotPrimaryError extends Error {}

/** The claims digest of a transaction whose app bound no claims. */
export const ZERO_DIGEST = new Uint8Array(32);

export type TxStatus = "Unknown" | "Pending" | "Committed" | "Invalid";

/** What committing an executed transaction gave: a seqno, nothing to write, or a conflict. */
export type CommitOutcome =
  | { ok: true; seqno: number; view: number }
  | { ok: true; seqno: null }
  | { ok: false };

export type ReceiptLookup =
  | { status: "ok"; json: JsonReceipt; cose: Uint8Array }
  | { status: "Pending" | "Unknown" | "Invalid" }
  /** Committed, but before the snapshot this node started from: it holds no proof for it. */
  | { status: "BeforeSnapshot"; snapshotSeqno: number };

/**
 * What the in-memory receipt lookup gives: a receipt lookup, or `Archived`: committed, but its
 * proof left memory; it is rebuilt from the ledger entries from seqno `from` up to the signature
 * after it (`LedgerState.loadReceipt` reads them; src/ledger/receipts.ts).
 */
export type ReceiptInMemory = ReceiptLookup | { status: "Archived"; from: number };
