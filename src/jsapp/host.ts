import type { WriteSet } from "../kv/index.ts";

export type JsTxStatus = "Unknown" | "Pending" | "Committed" | "Invalid";

/** A committed transaction's own writes and receipt, or why they cannot be had yet. */
export type HistoricalLookup =
  | { status: "ok"; transactionId: string; writeSet: WriteSet; receipt: Record<string, unknown> | null }
  | { status: "fetching" }
  | { status: "unavailable"; reason: string };

/**
 * The node facts a JS app may ask for (`ccf.consensus`, `ccf.historical`), as the node that runs
 * the request knows them. Wired once, where the node and the executor meet.
 */
export interface JsAppHost {
  lastCommittedTxId(): { view: number; seqno: number };
  txStatus(view: number, seqno: number): JsTxStatus;
  /** The view of the transaction at `seqno`, or null when this node knows none there. */
  viewOf(seqno: number): number | null;
  /**
   * The writes and receipt of the committed transaction at `seqno`. `fetching`: being read from
   * the ledger; ask again shortly. Must not block.
   */
  historicalState(seqno: number): HistoricalLookup;
}
