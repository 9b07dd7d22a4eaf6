/**
 * Opening a ledger directory (LedgerFiles.open): every chunk read and checked in order, a torn
 * write at the end of the open chunk cut off, and the open chunk made ready for the next batch.
 * Only the open chunk may have been cut short by a crash; damage anywhere else throws. Also the
 * open chunk's record and its creation, which rotation and truncation share with recovery.
 */
import path from "node:path";
import {
  CHUNK_HEADER,
  type ChunkName,
  checkChunkEntries,
  chunkFileName,
  closedChunkTailProblem,
  orderChunks,
  scanChunk,
} from "./chunks.ts";
import type { DecodedEntry } from "./entry.ts";
import { LedgerError } from "./errors.ts";
import type { LedgerIo } from "./io.ts";
import { lastNonZeroEnd, type PreallocatedChunk } from "./preallocation.ts";

export interface OpenChunk extends PreallocatedChunk {
  start: number;
  file: string;
  /** File offset just past each entry on disk: ends[i] belongs to seqno start + i. */
  ends: number[];
}

export interface RecoveredChunks {
  /** Closed chunks, oldest first. */
  closed: ChunkName[];
  open: OpenChunk;
  /** Every entry on disk, in seqno order. */
  entries: DecodedEntry[];
  /** Bytes of a torn write cut off the end of the open chunk. */
  truncatedBytes: number;
}

/**
 * Reads, checks and repairs the chunks in `dir` (created if missing); a directory with no open
 * chunk gets a new one, starting after the last closed chunk or at `startSeqno`.
 */
export async function recoverChunks(io: LedgerIo, dir: string, startSeqno: number): Promise<RecoveredChunks> {
  await io.mkdir(dir);
  const chunks = orderChunks(await io.readdir(dir));
  const entries: DecodedEntry[] = [];
  const closed: ChunkName[] = [];
  let view = 0;
  let truncatedBytes = 0;
  let open: OpenChunk | undefined;
  for (const chunk of chunks) {
    const data = await io.readFile(path.join(dir, chunk.file));
    const scan = scanChunk(data, chunk.file, chunk.start);
    if (scan.torn && chunk.end !== undefined) {
      // Closed chunks were synced before they were renamed: damage here is not a torn write.
      throw new LedgerError(`closed chunk is damaged: ${scan.torn.reason}`, {
        file: chunk.file,
        offset: scan.torn.offset,
        seqno: chunk.start + scan.entries.length,
      });
    }
    const closedTail = closedChunkTailProblem(chunk, scan);
    if (closedTail) {
      const { file, offset, seqno } = closedTail;
      throw new LedgerError(`closed chunk is damaged: ${closedTail.reason}`, { file, offset, seqno });
    }
    view = checkChunkEntries(chunk, scan.entries, view);
    for (const { entry } of scan.entries) entries.push(entry);
    if (chunk.end !== undefined) {
      closed.push(chunk);
      continue;
    }
    const handle = await io.openFile(path.join(dir, chunk.file));
    // A zero tail after the last entry is preallocated space (perhaps an extension a crash cut
    // short): kept, and written over by the next batches.
    let allocated = data.length;
    if (scan.torn) {
      // The torn bytes themselves, not the preallocated zeros after them (cut off too).
      truncatedBytes =
        scan.goodLength === 0 ? data.length : lastNonZeroEnd(data, scan.goodLength) - scan.goodLength;
      await handle.truncate(scan.goodLength);
      if (scan.goodLength === 0) await handle.write(CHUNK_HEADER, 0);
      allocated = Math.max(scan.goodLength, CHUNK_HEADER.length);
    }
    // What we read may have sat only in the page cache of a process that died before its sync:
    // sync it now, before calling any of it durable.
    await handle.datasync();
    const size = Math.max(scan.goodLength, CHUNK_HEADER.length);
    const ends = scan.entries.map(({ offset, entry }) => offset + entry.frame.length);
    open = { start: chunk.start, file: chunk.file, handle, size, allocated, extending: true, ends };
  }
  // No open chunk: a crash came between closing one chunk and creating the next, or a new ledger.
  open ??= await createChunk(io, dir, closed.length > 0 ? closed[closed.length - 1]!.end! + 1 : startSeqno);
  // Likewise a rename or create by the previous process may not have reached the disk yet.
  await io.syncDir(dir);
  return { closed, open, entries, truncatedBytes };
}

export /** Creates `ledger_<start>` with its header, synced, and its directory entry synced. */
async function createChunk(
  io: LedgerIo,
  dir: string,
  start: number,
  onSync?: () => void,
): Promise<OpenChunk> {
  const file = chunkFileName(start);
  const handle = await io.createFile(path.join(dir, file));
  await handle.write(CHUNK_HEADER, 0);
  onSync?.();
  await handle.datasync();
  await io.syncDir(dir);
  const size = CHUNK_HEADER.length;
  return { start, file, handle, size, allocated: size, extending: true, ends: [] };
}
