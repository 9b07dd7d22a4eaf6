/** A ledger directory read at rest, for comparing nodes' ledgers. */
import { readLedgerDir } from "../../src/ledger/index.ts";

export interface LedgerLine {
  seqno: number;
  view: number;
  frame: Uint8Array;
}

/** A ledger directory's entries from seqno 1 up to `upTo`, read with the strict audit reader. */
export async function ledgerPrefix(dir: string, upTo: number): Promise<LedgerLine[]> {
  const out: LedgerLine[] = [];
  for await (const { entry } of readLedgerDir(dir)) {
    if (entry.seqno > upTo) break;
    out.push({ seqno: entry.seqno, view: entry.view, frame: entry.frame });
  }
  return out;
}
