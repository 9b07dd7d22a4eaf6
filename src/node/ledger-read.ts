import { join } from "node:path";
import { readLedgerDir } from "../ledger/index.ts";
import type { CocoNode } from "./node.ts";

/** At most this many frames per read: a page of the console's ledger explorer. */
export const MAX_FRAMES_PER_READ = 100;

/**
 * Ledger frames `from`..`to` (clipped to what the node holds, at most MAX_FRAMES_PER_READ), for
 * read-only views. Recent entries come from consensus's in-memory log; older ones (before its
 * last compaction, so committed and never rewritten) from the chunk files on disk. The scan stops
 * where the in-memory log begins, so a batch being appended is never read half-written.
 */
export async function readLedgerFrames(node: CocoNode, from: number, to: number): Promise<Uint8Array[]> {
  const last = Math.min(to, node.state.lastSeqno, from + MAX_FRAMES_PER_READ - 1);
  if (from < 1 || last < from) return [];
  const inMemory = node.consensusEntries(from, last);
  const firstInMemory = inMemory[0]?.seqno ?? last + 1;
  const older: Uint8Array[] = [];
  if (from < firstInMemory) {
    try {
      for await (const { entry } of readLedgerDir(join(node.config.dir, "ledger"))) {
        if (entry.seqno >= firstInMemory) break;
        if (entry.seqno >= from) older.push(entry.frame);
      }
    } catch (e) {
      // The open chunk's torn tail (a batch being written) ends the scan; what came before stands.
      if (older.length === 0) throw e;
    }
  }
  return [...older, ...inMemory.map((e) => e.data)];
}
