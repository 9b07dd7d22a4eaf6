let enabled = process.env.COCO_EVM_FAST !== "0";

/** Turns the fast path on or off for this process (differential tests run both ways). */
export function setFastPath(on: boolean): void {
  enabled = on;
}

/** Whether the fast path (frames and whole transactions) is on in this process. */
export function fastPathOn(): boolean {
  return enabled;
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
