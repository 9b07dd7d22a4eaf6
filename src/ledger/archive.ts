/**
 * The ledger files read back for receipts whose proofs left memory (receipts.ts): the entries from
 * a seqno on, read chunk by chunk from the first chunk that holds it, so an old receipt costs one
 * or two chunk reads, not a scan of the whole ledger. Within a chunk, the frames before the seqno
 * asked for are stepped over by their length, not decoded.
 */
import path from "node:path";
import { CHUNK_HEADER, type ChunkName, firstNonZero, orderChunks } from "./chunks.ts";
import {
  type DecodedEntry,
  decodeEntry,
  frameChecksumOk,
  frameLengthAt,
  MAX_FRAME_LENGTH,
  MIN_FRAME_LENGTH,
} from "./entry.ts";
import { LedgerError } from "./errors.ts";
import { type LedgerIo, nodeIo } from "./io.ts";
import type { LedgerArchive } from "./receipts.ts";

/** Listing and reading again when a chunk was renamed (closed or marked committed) meanwhile. */
const ATTEMPTS = 3;

/**
 * The chunk files in `dir` as an archive. The open chunk is read as it stands: a frame being
 * written (incomplete, or failing its checksum) ends the iteration, and so do the zeros preallocated
 * after its last entry; what came before stands.
 * Whoever uses the entries checks them (receipts.ts checks them against the signed root).
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
          const read = entriesOfChunk(data, chunk, next);
          for (const entry of read.entries) yield entry;
          if (read.entries.length > 0) next = read.entries.at(-1)!.seqno + 1;
          if (!read.whole) return;
        }
        if (!vanished) return;
      }
    },
  };
}

/**
 * The entries of one chunk from seqno `from` on, and whether the chunk was read to its end (its last
 * byte, or zeros from the last entry to it: the open chunk's preallocated space); false when a frame
 * is incomplete or fails its checksum (a batch being written, or damage).
 */
function entriesOfChunk(
  data: Uint8Array,
  chunk: ChunkName,
  from: number,
): { entries: DecodedEntry[]; whole: boolean } {
  if (data.length < CHUNK_HEADER.length || !CHUNK_HEADER.every((b, i) => data[i] === b)) {
    // A chunk just created may not have its header yet; anything else is not a chunk.
    if (data.every((b, i) => i >= CHUNK_HEADER.length || b === CHUNK_HEADER[i] || b === 0)) {
      return { entries: [], whole: false };
    }
    throw new LedgerError("not a Coco ledger chunk (bad file header)", { file: chunk.file, offset: 0 });
  }
  const entries: DecodedEntry[] = [];
  let pos = CHUNK_HEADER.length;
  for (let seqno = chunk.start; pos < data.length; seqno++) {
    const length = frameLengthAt(data, pos);
    if (length === undefined || length < MIN_FRAME_LENGTH || length > MAX_FRAME_LENGTH) break;
    if (pos + length > data.length) break;
    if (seqno >= from) {
      const frame = data.subarray(pos, pos + length);
      if (!frameChecksumOk(frame)) break;
      const entry = decodeEntry(frame);
      if (entry.seqno !== seqno) {
        throw new LedgerError(`expected seqno ${seqno}, found ${entry.seqno}`, {
          file: chunk.file,
          offset: pos,
          seqno,
        });
      }
      entries.push(entry);
    }
    pos += length;
  }
  return { entries, whole: firstNonZero(data, pos) === data.length };
}
