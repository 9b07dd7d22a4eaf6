let enabled = process.env.COCO_EVM_FAST !== "0";

/** Turns the fast path on or off for this process (differential tests run both ways). */
export function setFastPath(on: boolean): void {
  enabled = on;
}

/** Whether the fast path (frames and whole transactions) is on in this process. */
export function fastPathOn(): boolean {
  return enabled;
}

let transactions = process.env.COCO_EVM_FAST_TX !== "0";

/**
 * Turns the whole-transaction part alone on or off (`COCO_EVM_FAST_TX=0`): frames still run fast
 * inside ethereumjs's runTx. For measuring one against the other; `setFastPath(false)` turns both off.
 */
export function setFastTxPath(on: boolean): void {
  transactions = on;
}

/** Whether whole plain-call transactions skip runTx (both switches on). */
export function fastTxPathOn(): boolean {
  return enabled && transactions;
}

/**
 * Frames run fast, and frames handed to ethereumjs with the reason; whole transactions run on the
 * fast transaction path (./tx.ts), and those handed to `runTx` with the reason (tests and
 * profiles read these).
 */
export const fastPathStats = {
  fast: 0,
  fallbacks: new Map<string, number>(),
  txs: 0,
  txFallbacks: new Map<string, number>(),
};
