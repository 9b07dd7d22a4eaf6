/**
 * The ledger files read back for receipts whose proofs left memory (receipts.ts): the entries from
 * a seqno on, read chunk by chunk from the first chunk that holds it, so an old receipt costs one
 * or two chunk reads, not a scan of the whole ledger.
 */
import path from "node:path";
import { orderChunks, scanChunk } from "./chunks.ts";
import type { DecodedEntry } from "./entry.ts";
import { type LedgerIo, nodeIo } from "./io.ts";
import type { LedgerArchive } from "./receipts.ts";

/** Listing and reading again when a chunk was renamed (closed or marked committed) meanwhile. */
const ATTEMPTS = 3;

/**
 * The chunk files in `dir` as an archive. The open chunk is read as it stands: a batch being
 * written shows as a torn tail, which ends the iteration (what came before it stands).
 */
export function ledgerDirArchive(dir: string, io: LedgerIo = nodeIo): LedgerArchive {
  return {
    async *entriesFrom(from: number): AsyncGenerator<DecodedEntry> {
      let next = from;
      let attempts = 0;
      for (;;) {
        const chunks = orderChunks(await io.readdir(dir)).filter((c) => c.end === undefined || c.end >= next);
        let vanished = false;
        for (const chunk of chunks) {
          // A gap before the first chunk: the files start after `next` (a snapshot replaced them).
          if (chunk.start > next) return;
          let data: Uint8Array;
          try {
            data = await io.readFile(path.join(dir, chunk.file));
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code === "ENOENT" && ++attempts < ATTEMPTS) {
              vanished = true;
              break;
            }
            throw e;
          }
          const scan = scanChunk(data, chunk.file, chunk.start);
          for (const { entry } of scan.entries) {
            if (entry.seqno < next) continue;
            yield entry;
            next = entry.seqno + 1;
          }
          if (scan.torn) return;
        }
        if (!vanished) return;
      }
    },
  };
}
