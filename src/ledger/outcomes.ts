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
