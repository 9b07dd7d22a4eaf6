/**
 * Preallocation of the open chunk: it is kept ahead of its last entry by zeros that were written
 * and synced, so a batch's durable write overwrites blocks the file already has. An appending write
 * must also commit the file's new size through the file system's journal; an overwrite only flushes
 * its data (about 0.77x the CPU per durable batch, measured in BENCHMARKS.md, "Session 9:
 * preallocated chunk files"). Reserving space without writing it (fallocate) would not do: the
 * first write to each unwritten extent still changes metadata through the journal.
 *
 * Readers take a zero tail for the open chunk's end, and a chunk is cut to its last entry before
 * it is closed, so closed chunks hold their entries only (docs/ledger-format.md, "Preallocation").
 * LedgerFiles (files.ts) decides when; this file holds the step, the extension, the cut, and what
 * recovery needs to tell a torn write from the zeros after it.
 */

import { LedgerError } from "./errors.ts";
import type { LedgerFileHandle } from "./io.ts";

/**
 * The open chunk grows by this many bytes of synced zeros at a time (its length stays a multiple of
 * it). 1 MiB: a group-commit batch is a few KiB, so one extension serves hundreds of batches and
 * costs each a few µs of CPU; writing it takes a few ms, once per MiB of ledger, not on most
 * batches' path; and at most one step is cut off when a chunk closes (a quarter of a default
 * chunk). A smaller chunk size lowers the step to the chunk size (rounded up to 4 KiB): a chunk
 * closes soon after it reaches its size, and zeros past that are only cut off again.
 */
export const DEFAULT_PREALLOCATION = 1024 * 1024;
const PAGE = 4096;

/** The part of an open chunk that preallocation reads and keeps up to date. */
export interface PreallocatedChunk {
  handle: LedgerFileHandle;
  /** Bytes of the chunk's header and entries: where the next batch is written. */
  size: number;
  /** The file's length: `size` plus the zeros preallocated after it. */
  allocated: number;
  /** False once an extension found no space: the chunk grows by appending from then on. */
  extending: boolean;
}

/** The LedgerFiles counters that preallocation adds to (see LedgerFilesStats). */
export interface PreallocationCounters {
  syncs: number;
  extensions: number;
  extensionsRefused: number;
}

/**
 * The step for the `preallocation` option (undefined: DEFAULT_PREALLOCATION; 0: append instead),
 * never more than the chunk size rounded up to a page.
 */
export function preallocationStep(preallocation: number | undefined, chunkSize: number): number {
  const bytes = preallocation ?? DEFAULT_PREALLOCATION;
  if (!Number.isSafeInteger(bytes) || bytes < 0) {
    throw new LedgerError(`preallocation must be a non-negative integer, got ${bytes}`);
  }
  return Math.min(bytes, Math.ceil(chunkSize / PAGE) * PAGE);
}

/**
 * Writes synced zeros from the end of the file to the next multiple of the step at or after
 * `needed`, before the batch that would pass the end is written. A crash meanwhile leaves a longer
 * zero tail (or none), which `open` reads as the chunk's end. Without space for a whole step the
 * partial extension is cut off again and this chunk grows by appending: the disk then fills no
 * sooner than it would without preallocation, and the batch write that finds no space fails the
 * ledger as it always has (a node fail-stops). The next chunk tries again.
 */
export async function extend(
  open: PreallocatedChunk,
  needed: number,
  step: number,
  counters: PreallocationCounters,
): Promise<void> {
  if (step === 0 || !open.extending) return;
  const target = Math.ceil(needed / step) * step;
  try {
    await writeZeros(open.handle, open.allocated, target - open.allocated);
    counters.syncs++;
  } catch (error) {
    if (!isNoSpace(error)) throw error;
    open.extending = false;
    counters.extensionsRefused++;
    await open.handle.truncate(open.allocated);
    counters.syncs++;
    await open.handle.datasync();
    return;
  }
  counters.extensions++;
  open.allocated = target;
}

/**
 * Cuts the preallocated zeros after the chunk's last entry, durably: a closed chunk holds its
 * entries and nothing after them.
 */
export async function cutZeroTail(open: PreallocatedChunk, counters: PreallocationCounters): Promise<void> {
  if (open.allocated <= open.size) return;
  await open.handle.truncate(open.size);
  counters.syncs++;
  await open.handle.datasync();
  open.allocated = open.size;
}

/** A buffer of zeros reused by every extension (written in slices of at most its length). */
let zeros: Uint8Array | undefined;

/** Writes `length` zero bytes at `position` and returns once they are on stable storage. */
async function writeZeros(handle: LedgerFileHandle, position: number, length: number): Promise<void> {
  zeros ??= new Uint8Array(DEFAULT_PREALLOCATION);
  for (let done = 0; done < length; ) {
    const slice = zeros.subarray(0, Math.min(zeros.length, length - done));
    if (handle.writeDurable) await handle.writeDurable(slice, position + done);
    else await handle.write(slice, position + done);
    done += slice.length;
  }
  if (!handle.writeDurable) await handle.datasync();
}

/** The file system has no room (ENOSPC) or the user's quota is used up (EDQUOT). */
function isNoSpace(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === "ENOSPC" || code === "EDQUOT";
}

/**
 * The end of the last non-zero byte at or after `from` (`from` when there is none): on recovery,
 * where a torn write ends and the preallocated zeros after it begin.
 */
export function lastNonZeroEnd(data: Uint8Array, from: number): number {
  let end = data.length;
  while (end > from && data[end - 1] === 0) end--;
  return end;
}
