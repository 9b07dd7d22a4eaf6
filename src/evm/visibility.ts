import type { StoredLog, StoredTx } from "./records.ts";

/**
 * Who may see what of a transaction (docs/ethereum.md, "Confidentiality"): its body, receipt and
 * Coco TxID are the sender's and the recipient's; a log is also shown to an account an indexed
 * topic names (so the receiver of an ERC-20 transfer sees its Transfer event). Everyone else
 * learns that a block exists, its number, hash, time and gas, and the transaction's hash.
 */
export function txVisible(record: StoredTx, bound: ReadonlySet<string>): boolean {
  if (record.privacy) return record.privacy.party;
  return bound.has(record.from) || (record.to !== null && bound.has(record.to));
}

export function logVisible(record: StoredTx, log: StoredLog, bound: ReadonlySet<string>): boolean {
  if (record.privacy) return record.privacy.party;
  if (txVisible(record, bound)) return true;
  for (const topic of log.topics.slice(1)) {
    if (topic.startsWith(`0x${"00".repeat(12)}`) && bound.has(`0x${topic.slice(26)}`)) return true;
  }
  return false;
}
