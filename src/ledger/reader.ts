/**
 * The strict reader for audit tools. Unlike LedgerFiles.open it repairs nothing: a torn tail, a bad
 * checksum, a gap or any other irregularity stops it with a LedgerError naming file, offset and seqno.
 * Zeros after the open chunk's last entry are its preallocated space, and end it; after a closed
 * chunk's last entry they are damage.
 */
import path from "node:path";
import { checkChunkEntries, closedChunkTailProblem, orderChunks, scanChunk } from "./chunks.ts";
import type { DecodedEntry } from "./entry.ts";
import { LedgerError } from "./errors.ts";
import { type LedgerIo, nodeIo } from "./io.ts";

export interface LedgerRecord {
  /** The chunk's file name, relative to the ledger directory. */
  file: string;
  offset: number;
  entry: DecodedEntry;
}

export async function* readLedgerDir(dir: string, io: LedgerIo = nodeIo): AsyncGenerator<LedgerRecord> {
  let files: string[];
  try {
    files = await io.readdir(dir);
  } catch (error) {
    throw new LedgerError(`cannot list ledger directory ${dir}: ${(error as Error).message}`);
  }
  let view = 0;
  for (const chunk of orderChunks(files)) {
    const data = await io.readFile(path.join(dir, chunk.file));
    const scan = scanChunk(data, chunk.file, chunk.start);
    if (scan.torn) {
      const seqno = chunk.start + scan.entries.length;
      throw new LedgerError(`torn write: ${scan.torn.reason}`, {
        file: chunk.file,
        offset: scan.torn.offset,
        seqno,
      });
    }
    // Zeros in a closed chunk: where its last entries should be (a block the disk lost reads back
    // as zeros), the first missing seqno is the first bad one; after all of them, the one after.
    const closedTail = closedChunkTailProblem(chunk, scan);
    if (closedTail && chunk.start + scan.entries.length <= chunk.end!) throw closedTail;
    view = checkChunkEntries(chunk, scan.entries, view);
    for (const { offset, entry } of scan.entries) yield { file: chunk.file, offset, entry };
    if (closedTail) throw closedTail;
  }
}
