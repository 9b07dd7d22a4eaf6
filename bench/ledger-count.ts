import { EntryType, readLedgerDir } from "../src/ledger/index.ts";

export interface LedgerCount {
  entries: number;
  signatures: number;
}

/**
 * Entries and signature transactions in a node's ledger directory: how many transactions one
 * signature covers is what signature pacing changes, and unlike CPU time it does not depend on
 * how loaded the machine is. Read while the node is idle or stopped (the reader refuses a torn tail).
 */
export async function countLedger(dir: string): Promise<LedgerCount> {
  const count = { entries: 0, signatures: 0 };
  for await (const { entry } of readLedgerDir(dir)) {
    count.entries++;
    if (entry.type === EntryType.Signature) count.signatures++;
  }
  return count;
}

/** What was appended between two counts, and the transactions each signature covered. */
export function ledgerGrowth(before: LedgerCount, after: LedgerCount) {
  const signatures = after.signatures - before.signatures;
  const transactions = after.entries - before.entries - signatures;
  return {
    transactions,
    signatures,
    transactions_per_signature: signatures > 0 ? Number((transactions / signatures).toFixed(2)) : null,
  };
}
