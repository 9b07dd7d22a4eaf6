/**
 * Chunk files: names, the file header, and scanning a chunk's frames. Shared by the writer
 * (LedgerFiles.open, which repairs a torn tail) and the strict audit reader (which repairs nothing).
 */
import { isAllZero } from "./bytes.ts";
import {
  type DecodedEntry,
  decodeEntry,
  ENTRY_FORMAT_VERSION,
  EntryType,
  frameChecksumOk,
  frameLengthAt,
  MAX_FRAME_LENGTH,
  MIN_FRAME_LENGTH,
} from "./entry.ts";
import { LedgerError, withContext } from "./errors.ts";

/** "COCOLDG" then the chunk format version. */
export const CHUNK_HEADER = Uint8Array.from([0x43, 0x4f, 0x43, 0x4f, 0x4c, 0x44, 0x47, 0x01]);

export interface ChunkName {
  file: string;
  start: number;
  /** Absent for the open chunk. */
  end: number | undefined;
  committed: boolean;
}

const NUMBER = "(0|[1-9][0-9]{0,15})";
const CHUNK_NAME = new RegExp(`^ledger_${NUMBER}(?:-${NUMBER}(\\.committed)?)?$`);

export function chunkFileName(start: number, end?: number, committed = false): string {
  if (end === undefined) return `ledger_${start}`;
  return `ledger_${start}-${end}${committed ? ".committed" : ""}`;
}

/** Undefined for files that are not chunks; a LedgerError for a malformed `ledger_` name. */
export function parseChunkName(file: string): ChunkName | undefined {
  if (!file.startsWith("ledger_")) return undefined;
  const match = CHUNK_NAME.exec(file);
  const start = Number(match?.[1]);
  const end = match?.[2] === undefined ? undefined : Number(match[2]);
  if (!match || !Number.isSafeInteger(start) || (end !== undefined && !Number.isSafeInteger(end))) {
    throw new LedgerError("malformed chunk file name", { file });
  }
  if (start < 1 || (end !== undefined && end < start)) {
    throw new LedgerError("chunk file name has an impossible seqno range", { file });
  }
  return { file, start, end, committed: match[3] !== undefined };
}

/**
 * The chunks of a directory listing in seqno order, checked for gaps and overlaps. At most one open
 * chunk, and it must come last. The first chunk may start after seqno 1: a node that started from a
 * snapshot holds only the entries after it.
 */
export function orderChunks(files: string[]): ChunkName[] {
  const chunks = files
    .map(parseChunkName)
    .filter((c): c is ChunkName => c !== undefined)
    .sort((a, b) => a.start - b.start);
  for (let i = 0; i < chunks.length; i++) {
    const chunk = chunks[i]!;
    const previous = chunks[i - 1];
    if (chunk.end === undefined && i !== chunks.length - 1) {
      throw new LedgerError(`open chunk is followed by ${chunks[i + 1]!.file}`, { file: chunk.file });
    }
    if (previous && previous.end !== undefined && chunk.start !== previous.end + 1) {
      const kind = chunk.start <= previous.end ? "overlaps" : "leaves a gap after";
      throw new LedgerError(`chunk ${kind} ${previous.file}`, { file: chunk.file });
    }
  }
  return chunks;
}

export interface ScannedEntry {
  offset: number;
  entry: DecodedEntry;
}

export interface ChunkScan {
  entries: ScannedEntry[];
  /** Bytes up to the end of the last good frame (or the header). */
  goodLength: number;
  /**
   * Bytes after goodLength that are all zero: the open chunk's preallocated space (files.ts), read
   * as the chunk's end. Zero when the chunk ends at its last frame, or when the tail is torn.
   */
  zeroTail: number;
  /** Set when the bytes after goodLength are a torn write: bad, not all zero, and nothing valid follows. */
  torn: { offset: number; reason: string } | undefined;
}

/**
 * Reads every frame of a chunk. Zero bytes after the last good frame are the chunk's end (its
 * `zeroTail`: space the writer preallocated; whether a chunk may have one is its caller's rule). A
 * bad region after the last good frame that is not all zero is reported as `torn` only if no valid
 * frame follows it; anything else irregular (a bad header, a frame that passes its checksum but not
 * validation, a seqno out of sequence, a bad frame followed by a good one) throws.
 */
export function scanChunk(data: Uint8Array, file: string, firstSeqno: number): ChunkScan {
  const headerBad = data.length < CHUNK_HEADER.length || !CHUNK_HEADER.every((b, i) => data[i] === b);
  if (headerBad) {
    const prefix = data.subarray(0, CHUNK_HEADER.length);
    const partialHeader = data.length < CHUNK_HEADER.length && prefix.every((b, i) => b === CHUNK_HEADER[i]);
    if (partialHeader || isAllZero(data)) {
      return {
        entries: [],
        goodLength: 0,
        zeroTail: 0,
        torn: { offset: 0, reason: "incomplete file header" },
      };
    }
    throw new LedgerError("not a Coco ledger chunk (bad file header)", { file, offset: 0 });
  }
  const entries: ScannedEntry[] = [];
  let pos = CHUNK_HEADER.length;
  let expected = firstSeqno;
  while (pos < data.length) {
    const problem = frameProblem(data, pos);
    if (problem) {
      const nonZero = firstNonZero(data, pos);
      if (nonZero === data.length)
        return { entries, goodLength: pos, zeroTail: data.length - pos, torn: undefined };
      // A frame starts with its version byte, never zero: the search can start at the first non-zero byte.
      if (validFrameAfter(data, Math.max(nonZero, pos + 1), expected)) {
        throw new LedgerError(`${problem}, but valid entries follow: corruption, not a torn write`, {
          file,
          offset: pos,
          seqno: expected,
        });
      }
      const reason =
        nonZero === pos
          ? problem
          : `non-zero bytes at offset ${nonZero}, after ${nonZero - pos} zero bytes that follow the last entry`;
      return { entries, goodLength: pos, zeroTail: 0, torn: { offset: pos, reason } };
    }
    const length = frameLengthAt(data, pos)!;
    let entry: DecodedEntry;
    try {
      entry = decodeEntry(data.subarray(pos, pos + length));
    } catch (error) {
      throw withContext(error, { file, offset: pos });
    }
    if (entry.seqno !== expected) {
      // The ledger goes wrong at the seqno that should be here (audits report it as the first bad one).
      throw new LedgerError(`expected seqno ${expected}, found ${entry.seqno}`, {
        file,
        offset: pos,
        seqno: expected,
      });
    }
    entries.push({ offset: pos, entry });
    pos += length;
    expected++;
  }
  return { entries, goodLength: pos, zeroTail: 0, torn: undefined };
}

/** Compared a page at a time (memcmp under Buffer.compare): a preallocated tail is a megabyte of zeros. */
const ZERO_PAGE = Buffer.alloc(4096);

/** The offset of the first non-zero byte at or after `from`, or `data.length` if there is none. */
export function firstNonZero(data: Uint8Array, from: number): number {
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  let pos = from;
  for (; pos + ZERO_PAGE.length <= bytes.length; pos += ZERO_PAGE.length) {
    if (bytes.compare(ZERO_PAGE, 0, ZERO_PAGE.length, pos, pos + ZERO_PAGE.length) !== 0) break;
  }
  while (pos < bytes.length && bytes[pos] === 0) pos++;
  return pos;
}

/**
 * What a closed chunk must not have: a zero tail. The writer cuts a chunk to its last entry, and
 * makes that durable, before it renames it closed; zeros after a closed chunk's last entry are damage.
 */
export function closedChunkTailProblem(chunk: ChunkName, scan: ChunkScan): LedgerError | undefined {
  if (chunk.end === undefined || scan.zeroTail === 0) return undefined;
  return new LedgerError(`closed chunk has ${scan.zeroTail} zero bytes after its last entry`, {
    file: chunk.file,
    offset: scan.goodLength,
    seqno: chunk.start + scan.entries.length,
  });
}

/** Why the bytes at `pos` are not a complete, checksum-valid frame; undefined if they are. */
function frameProblem(data: Uint8Array, pos: number): string | undefined {
  const length = frameLengthAt(data, pos);
  if (length === undefined) return "incomplete frame header";
  // The version byte is judged by decodeEntry once the checksum passes: a complete, intact frame
  // of an unknown version must stop the reader, never be cut off as if it were torn.
  if (length < MIN_FRAME_LENGTH || length > MAX_FRAME_LENGTH) return `impossible frame size ${length}`;
  if (pos + length > data.length)
    return `incomplete frame (${length} bytes declared, ${data.length - pos} present)`;
  if (!frameChecksumOk(data.subarray(pos, pos + length))) return "frame checksum mismatch";
  return undefined;
}

/**
 * Whether any offset from `from` holds a valid frame for a seqno at or after `seqno`. Such a frame
 * means the bad bytes before it are damage inside the chunk, not an interrupted final write.
 */
function validFrameAfter(data: Uint8Array, from: number, seqno: number): boolean {
  for (let pos = from; pos + MIN_FRAME_LENGTH <= data.length; pos++) {
    if (data[pos] !== ENTRY_FORMAT_VERSION || frameProblem(data, pos) !== undefined) continue;
    try {
      const entry = decodeEntry(data.subarray(pos, pos + frameLengthAt(data, pos)!));
      if (entry.seqno >= seqno) return true;
    } catch {
      // checksum happened to match bytes that are not an entry: keep looking
    }
  }
  return false;
}

/**
 * Checks what the chunk's name promises: a closed chunk holds exactly start..end and ends on a
 * signature. Also checks that views never go back, across chunks (`previousView` is the view of the
 * entry before this chunk). Returns the view of the chunk's last entry.
 */
export function checkChunkEntries(chunk: ChunkName, entries: ScannedEntry[], previousView: number): number {
  let view = previousView;
  for (const { offset, entry } of entries) {
    if (entry.view < view) {
      throw new LedgerError(`view ${entry.view} is lower than the previous entry's view ${view}`, {
        file: chunk.file,
        offset,
        seqno: entry.seqno,
      });
    }
    view = entry.view;
  }
  if (chunk.end === undefined) return view;
  const last = entries[entries.length - 1];
  if (!last || last.entry.seqno !== chunk.end) {
    throw new LedgerError(
      `closed chunk should end at seqno ${chunk.end} but ends at ${last?.entry.seqno ?? "nothing"}`,
      {
        file: chunk.file,
      },
    );
  }
  if (last.entry.type !== EntryType.Signature) {
    throw new LedgerError("closed chunk does not end on a signature entry", {
      file: chunk.file,
      offset: last.offset,
      seqno: last.entry.seqno,
    });
  }
  return view;
}
