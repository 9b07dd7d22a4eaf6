/**
 * The ledger on disk: chunk files written with group commit, and crash recovery on open (reading,
 * checking and repairing the chunks: chunk-recovery.ts).
 *
 * Group commit: appends only queue frames. One drain loop at a time writes everything queued with
 * one durable write (O_DSYNC on a node: one system call; a write and an fdatasync through an `io`
 * whose handles cannot); whatever is appended while it is in flight goes out together in the next
 * batch. An entry is reported durable only after the write that covers it is on stable storage.
 *
 * Preallocation (preallocation.ts): the open chunk is kept ahead of its last entry by synced zeros,
 * so a batch's durable write overwrites blocks the file already has; closed chunks hold their
 * entries only.
 *
 * Every step that changes the directory (rotate, truncate, commit) is ordered so that a crash
 * between any two steps leaves files that `open` accepts, with no acknowledged entry lost.
 */
import path from "node:path";
import { concatBytes, isU64, u32le } from "./bytes.ts";
import { createChunk, type OpenChunk, recoverChunks } from "./chunk-recovery.ts";
import { CHUNK_HEADER, type ChunkName, chunkFileName, scanChunk } from "./chunks.ts";
import {
  type DecodedEntry,
  EntryType,
  FRAME_HEADER_LENGTH,
  frameLengthAt,
  MIN_FRAME_LENGTH,
} from "./entry.ts";
import { invariant, LedgerError } from "./errors.ts";
import { type LedgerFileHandle, type LedgerIo, nodeIo } from "./io.ts";
import { cutZeroTail, extend, preallocationStep } from "./preallocation.ts";

export const DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024;

export interface LedgerFilesOptions {
  /** A chunk is closed at the first signature entry that brings it to this many bytes. */
  chunkSize?: number;
  /**
   * Seqno of the first entry when the directory holds no chunk yet; ignored otherwise. A node that
   * starts from a snapshot at seqno s passes s + 1. Default 1.
   */
  startSeqno?: number;
  /** The file system; tests and the simulator substitute their own. */
  io?: LedgerIo;
  /** Bytes the open chunk is extended by at a time (see DEFAULT_PREALLOCATION); 0 appends instead. */
  preallocation?: number;
}

export interface LedgerFilesStats {
  /** Batches written (one write call each). */
  batches: number;
  /** fdatasync calls on chunk files, including the header of each new chunk. */
  syncs: number;
  /** Extensions of the open chunk by synced zeros (each one durable write, counted in `syncs`). */
  extensions: number;
  /** Extensions refused for lack of space: that chunk then grows by appending, as without them. */
  extensionsRefused: number;
}

type Queued =
  | { kind: "entry"; seqno: number; frame: Uint8Array; isSignature: boolean }
  | {
      kind: "op";
      /**
       * Renaming closed chunks touches no entry the write batches touch: a batch gathers the
       * entries queued behind such an operation too, and the operation runs after it.
       */
      commutes?: boolean;
      truncateAfter?: number;
      run: () => Promise<void>;
      resolve: () => void;
      reject: (e: Error) => void;
    };

interface Waiter {
  seqno: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

export class LedgerFiles {
  private readonly queue: Queued[] = [];
  private draining = false;
  private waiters: Waiter[] = [];
  private readonly listeners: Array<(durableSeqno: number) => void> = [];
  private beforeBatch: (() => void) | undefined;
  private failure: LedgerError | undefined;
  private closing = false;
  private last: number;
  private durable: number;
  private committed: number;
  /** The first seqno this ledger holds (or will hold); nothing before it can be truncated to. */
  private first: number;
  /** Close the open chunk at the next signature, whatever its size (`trigger_ledger_chunk`). */
  private chunkRequested = false;
  private readonly counters: LedgerFilesStats = { batches: 0, syncs: 0, extensions: 0, extensionsRefused: 0 };

  private constructor(
    private readonly dir: string,
    private readonly io: LedgerIo,
    private readonly chunkSize: number,
    private readonly step: number,
    private readonly closed: ChunkName[],
    private open: OpenChunk,
  ) {
    this.last = open.start + open.ends.length - 1;
    this.durable = this.last;
    this.first = closed[0]?.start ?? open.start;
    this.committed = closed.reduce((max, c) => (c.committed ? Math.max(max, c.end!) : max), 0);
  }

  /**
   * Opens (or creates) the ledger in `dir` and returns every entry on disk. A torn write at the end
   * of the open chunk is cut off and reported in `truncatedBytes`; damage anywhere else throws.
   */
  static async open(
    dir: string,
    opts: LedgerFilesOptions = {},
  ): Promise<{ ledger: LedgerFiles; entries: DecodedEntry[]; truncatedBytes: number }> {
    const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
    if (!Number.isSafeInteger(chunkSize) || chunkSize < 1) {
      throw new LedgerError(`chunk size must be a positive integer, got ${chunkSize}`);
    }
    const step = preallocationStep(opts.preallocation, chunkSize);
    const startSeqno = opts.startSeqno ?? 1;
    if (!isU64(startSeqno) || startSeqno < 1) {
      throw new LedgerError(`start seqno must be a positive integer, got ${startSeqno}`);
    }
    const io = opts.io ?? nodeIo;
    const { closed, open, entries, truncatedBytes } = await recoverChunks(io, dir, startSeqno);
    return { ledger: new LedgerFiles(dir, io, chunkSize, step, closed, open), entries, truncatedBytes };
  }

  get lastSeqno(): number {
    return this.last;
  }

  /** Ends the open chunk at the next signature entry, whatever its size. */
  requestChunk(): void {
    this.chunkRequested = true;
  }

  /** The first seqno this ledger holds (or will hold): 1, or the one after a snapshot. */
  get firstSeqno(): number {
    return this.first;
  }

  /** Entries up to here are in committed chunks (a lower bound of the commit point). */
  get committedSeqno(): number {
    return this.committed;
  }

  get durableSeqno(): number {
    return this.durable;
  }

  get stats(): LedgerFilesStats {
    return { ...this.counters };
  }

  /** Queues one framed entry; `seqno` must follow the last one. Durability: see whenDurable. */
  append(seqno: number, frame: Uint8Array, isSignature: boolean): void {
    const unusable = this.unusable();
    if (unusable) throw unusable;
    if (seqno !== this.last + 1) {
      throw new LedgerError(`append out of order: expected seqno ${this.last + 1}, got ${seqno}`);
    }
    if (
      !(frame instanceof Uint8Array) ||
      frame.length < MIN_FRAME_LENGTH ||
      frameLengthAt(frame, 0) !== frame.length
    ) {
      throw new LedgerError("append needs one complete entry frame", { seqno });
    }
    // Cheap guard against appending a frame under the wrong seqno (full validation is decodeEntry's).
    const frameSeqno = u32le(frame, FRAME_HEADER_LENGTH) + u32le(frame, FRAME_HEADER_LENGTH + 4) * 2 ** 32;
    if (frameSeqno !== seqno) throw new LedgerError(`frame holds seqno ${frameSeqno}`, { seqno });
    // Chunks may only end on signatures, so the caller's flag must match the frame's type.
    if ((frame[FRAME_HEADER_LENGTH + 16] === EntryType.Signature) !== isSignature) {
      throw new LedgerError(`isSignature is ${isSignature} but the frame says otherwise`, { seqno });
    }
    this.queue.push({ kind: "entry", seqno, frame, isSignature });
    this.last = seqno;
    this.kick();
  }

  /** Resolves once every entry up to `seqno` is written and synced. */
  whenDurable(seqno: number): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (seqno <= this.durable) return Promise.resolve();
    if (seqno > this.last) {
      return Promise.reject(new LedgerError(`seqno ${seqno} has not been appended (last is ${this.last})`));
    }
    return new Promise((resolve, reject) => this.waiters.push({ seqno, resolve, reject }));
  }

  onDurable(listener: (durableSeqno: number) => void): void {
    this.listeners.push(listener);
  }

  /** Renames closed chunks that end at or before `seqno` to `.committed`. */
  markCommitted(seqno: number): Promise<void> {
    const unusable = this.unusable();
    if (unusable) return Promise.reject(unusable);
    if (!isU64(seqno) || seqno > this.last) {
      return Promise.reject(new LedgerError(`cannot commit seqno ${seqno}: last appended is ${this.last}`));
    }
    this.committed = Math.max(this.committed, seqno);
    // Every commit queues this. Were it to end the write batch being gathered, as other
    // operations do, the next signature would wait for an extra fdatasync on every node, once
    // per commit cycle.
    return this.enqueue(() => this.renameCommitted(), undefined, true);
  }

  /** Drops every entry after `afterSeqno`; refuses to drop committed entries. */
  truncate(afterSeqno: number): Promise<void> {
    const unusable = this.unusable();
    if (unusable) return Promise.reject(unusable);
    if (!isU64(afterSeqno)) return Promise.reject(new LedgerError(`invalid truncation point ${afterSeqno}`));
    if (afterSeqno < this.committed) {
      return Promise.reject(
        new LedgerError(`cannot truncate after ${afterSeqno}: entries up to ${this.committed} are committed`),
      );
    }
    if (afterSeqno < this.first - 1) {
      return Promise.reject(
        new LedgerError(`cannot truncate after ${afterSeqno}: this ledger starts at ${this.first}`),
      );
    }
    if (afterSeqno >= this.last) return Promise.resolve();
    // Entries still queued never reach the disk; the op below removes those already written.
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const item = this.queue[i]!;
      if (item.kind === "entry" && item.seqno > afterSeqno) this.queue.splice(i, 1);
    }
    this.last = afterSeqno;
    this.durable = Math.min(this.durable, afterSeqno);
    const dropped = this.waiters.filter((w) => w.seqno > afterSeqno);
    this.waiters = this.waiters.filter((w) => w.seqno <= afterSeqno);
    for (const w of dropped) {
      w.reject(new LedgerError("entry was truncated before it became durable", { seqno: w.seqno }));
    }
    return this.enqueue(() => this.truncateOnDisk(afterSeqno), afterSeqno);
  }

  /**
   * Drops every entry, committed ones too, and starts the ledger again at `startSeqno`: a snapshot
   * at `startSeqno - 1` has replaced them (a node that fell too far behind). Chunks are removed
   * newest first, each removal synced, so a crash leaves a contiguous prefix or the new empty chunk.
   */
  restartAt(startSeqno: number): Promise<void> {
    const unusable = this.unusable();
    if (unusable) return Promise.reject(unusable);
    if (!isU64(startSeqno) || startSeqno < 1) {
      return Promise.reject(new LedgerError(`start seqno must be a positive integer, got ${startSeqno}`));
    }
    // Entries still queued never reach the disk; queued operations run first, on the old chunks.
    for (let i = this.queue.length - 1; i >= 0; i--)
      if (this.queue[i]!.kind === "entry") this.queue.splice(i, 1);
    const dropped = this.waiters;
    this.waiters = [];
    for (const w of dropped) w.reject(new LedgerError("a snapshot replaced the ledger", { seqno: w.seqno }));
    this.first = startSeqno;
    this.last = startSeqno - 1;
    this.durable = startSeqno - 1;
    this.committed = startSeqno - 1;
    // Marked as a truncation, so a batch of old entries whose sync is in flight is not then
    // reported durable (it would claim new seqnos durable before they are written).
    return this.enqueue(async () => {
      await this.open.handle.close();
      await this.io.unlink(path.join(this.dir, this.open.file));
      await this.io.syncDir(this.dir);
      for (let chunk = this.closed.pop(); chunk; chunk = this.closed.pop()) {
        await this.io.unlink(path.join(this.dir, chunk.file));
        await this.io.syncDir(this.dir);
      }
      this.open = await createChunk(this.io, this.dir, startSeqno, () => this.counters.syncs++);
    }, startSeqno - 1);
  }

  /** Writes and syncs everything queued, then closes the open chunk. Further calls do nothing. */
  close(): Promise<void> {
    if (this.closing) return Promise.resolve();
    if (this.failure) {
      this.closing = true;
      return this.open.handle.close().catch(() => undefined);
    }
    const done = this.enqueue(() => this.open.handle.close());
    this.closing = true;
    return done;
  }

  private unusable(): LedgerError | undefined {
    if (this.failure) return this.failure;
    if (this.closing) return new LedgerError("ledger is closed");
    return undefined;
  }

  private enqueue(run: () => Promise<void>, truncateAfter?: number, commutes = false): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ kind: "op", commutes, truncateAfter, run, resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    if (this.draining) return;
    this.draining = true;
    // A microtask, so appends made in the same synchronous burst share the first batch.
    queueMicrotask(() => void this.drain());
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0 && !this.failure) {
        const head = this.queue[0]!;
        if (head.kind === "op") {
          this.queue.shift();
          try {
            await head.run();
          } catch (error) {
            head.reject(this.fail(error));
            return;
          }
          head.resolve();
        } else {
          await this.writeBatch();
        }
      }
    } catch (error) {
      this.fail(error);
    } finally {
      this.draining = false;
    }
  }

  /**
   * Runs synchronously just before each batch is gathered; it may append entries, which join the
   * batch. The node uses it to end a batch with a signature when clients wait for commit.
   */
  setBeforeBatch(hook: () => void): void {
    this.beforeBatch = hook;
  }

  /** Writes the queued entries up to the next op or chunk boundary with one write and one sync. */
  private async writeBatch(): Promise<void> {
    this.beforeBatch?.();
    const frames: Uint8Array[] = [];
    let bytes = 0;
    let lastSeqno = 0;
    let rotate = false;
    // Entries up to the first operation that does not commute with them; those that do stay
    // queued, in order, to run after this batch.
    const passed: Queued[] = [];
    let taken = 0;
    for (; taken < this.queue.length; taken++) {
      const item = this.queue[taken]!;
      if (item.kind === "op") {
        if (!item.commutes) break;
        passed.push(item);
        continue;
      }
      frames.push(item.frame);
      bytes += item.frame.length;
      lastSeqno = item.seqno;
      if (item.isSignature && (this.chunkRequested || this.open.size + bytes >= this.chunkSize)) {
        this.chunkRequested = false;
        rotate = true;
        taken++;
        break;
      }
    }
    this.queue.splice(0, taken, ...passed);
    const open = this.open;
    const data = frames.length === 1 ? frames[0]! : concatBytes(frames);
    this.counters.batches++;
    if (open.size + data.length > open.allocated) {
      await extend(open, open.size + data.length, this.step, this.counters);
    }
    if (open.handle.writeDurable) {
      // One system call: the handle's writes are synchronous (O_DSYNC), so this is the sync.
      this.counters.syncs++;
      await open.handle.writeDurable(data, open.size);
    } else {
      await open.handle.write(data, open.size);
      await this.sync(open.handle);
    }
    let end = open.size;
    for (const frame of frames) {
      end += frame.length;
      open.ends.push(end);
    }
    open.size = end;
    open.allocated = Math.max(open.allocated, end);
    // The chunk's offsets index its entries by seqno: they must end at the batch's last entry.
    invariant(
      open.start + open.ends.length - 1 === lastSeqno,
      () =>
        `chunk ${open.file} indexes ${open.ends.length} entries from ${open.start}, the batch ended at ${lastSeqno}`,
    );
    // A truncation queued meanwhile will remove part of this batch: do not call that part durable.
    let floor = lastSeqno;
    for (const item of this.queue) {
      if (item.kind === "op" && item.truncateAfter !== undefined) floor = Math.min(floor, item.truncateAfter);
    }
    this.advanceDurable(floor);
    if (rotate) await this.rotate();
  }

  private advanceDurable(seqno: number): void {
    if (seqno <= this.durable) return;
    // Only entries still in the ledger can be durable; anything else would be acknowledged unwritten.
    invariant(
      seqno <= this.last,
      () => `entries up to ${seqno} reported durable, the ledger ends at ${this.last}`,
    );
    this.durable = seqno;
    // In seqno order, so no caller hears about a later entry before an earlier one.
    const ready = this.waiters.filter((w) => w.seqno <= seqno).sort((a, b) => a.seqno - b.seqno);
    this.waiters = this.waiters.filter((w) => w.seqno > seqno);
    for (const w of ready) w.resolve();
    for (const listener of this.listeners) {
      try {
        listener(seqno);
      } catch (error) {
        // A listener's bug must not stop the ledger; surface it as an uncaught error instead.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  /**
   * Closes the open chunk (its entries are already synced) and starts the next one. The directory is
   * synced after the rename and again after the create, so a crash never leaves two open chunks.
   */
  private async rotate(): Promise<void> {
    const open = this.open;
    const end = open.start + open.ends.length - 1;
    // Before the rename says the chunk is closed (a crash in between leaves an open chunk that is
    // simply not preallocated).
    await cutZeroTail(open, this.counters);
    await open.handle.close();
    // The flag must say what the name says: the commit point may move during the awaits below
    // (a commit queued meanwhile then renames the chunk).
    const committed = end <= this.committed;
    const name = chunkFileName(open.start, end, committed);
    await this.io.rename(path.join(this.dir, open.file), path.join(this.dir, name));
    await this.io.syncDir(this.dir);
    this.closed.push({ file: name, start: open.start, end, committed });
    this.open = await createChunk(this.io, this.dir, end + 1, () => this.counters.syncs++);
  }

  private async renameCommitted(): Promise<void> {
    let renamed = false;
    for (const [i, chunk] of this.closed.entries()) {
      if (chunk.committed || chunk.end! > this.committed) continue;
      const name = chunkFileName(chunk.start, chunk.end, true);
      await this.io.rename(path.join(this.dir, chunk.file), path.join(this.dir, name));
      this.closed[i] = { ...chunk, file: name, committed: true };
      renamed = true;
    }
    if (renamed) await this.io.syncDir(this.dir);
  }

  /**
   * Removes entries after `after` from disk. Whole chunks go newest first, each removal synced, so a
   * crash leaves a contiguous prefix; a closed chunk that must be cut becomes the open chunk again.
   */
  private async truncateOnDisk(after: number): Promise<void> {
    const open = this.open;
    if (after >= open.start - 1) {
      const keep = after - open.start + 1;
      if (keep >= open.ends.length) return;
      open.size = keep > 0 ? open.ends[keep - 1]! : CHUNK_HEADER.length;
      open.ends.length = keep;
      // The preallocated zeros go too: the next batch extends the chunk again (rollbacks are rare).
      open.allocated = open.size;
      await open.handle.truncate(open.size);
      await this.sync(open.handle);
      return;
    }
    await open.handle.close();
    await this.io.unlink(path.join(this.dir, open.file));
    await this.io.syncDir(this.dir);
    for (let chunk = this.closed.at(-1); chunk && chunk.start > after; chunk = this.closed.at(-1)) {
      await this.io.unlink(path.join(this.dir, chunk.file));
      await this.io.syncDir(this.dir);
      this.closed.pop();
    }
    const target = this.closed.at(-1);
    if (!target || target.end === after) {
      this.open = await createChunk(this.io, this.dir, after + 1, () => this.counters.syncs++);
      return;
    }
    // `after` falls inside a closed chunk, which cannot be committed (after >= committed point).
    const file = chunkFileName(target.start);
    await this.io.rename(path.join(this.dir, target.file), path.join(this.dir, file));
    await this.io.syncDir(this.dir);
    this.closed.pop();
    const scan = scanChunk(await this.io.readFile(path.join(this.dir, file)), file, target.start);
    const keep = scan.entries.slice(0, after - target.start + 1);
    const ends = keep.map(({ offset, entry }) => offset + entry.frame.length);
    const size = ends.at(-1) ?? CHUNK_HEADER.length;
    const handle = await this.io.openFile(path.join(this.dir, file));
    this.open = { start: target.start, file, handle, size, allocated: size, extending: true, ends };
    await handle.truncate(size);
    await this.sync(handle);
  }

  private async sync(handle: LedgerFileHandle): Promise<void> {
    this.counters.syncs++;
    await handle.datasync();
  }

  /** After an I/O error the state on disk is unknown: stop, and fail everyone waiting. */
  private fail(error: unknown): LedgerError {
    if (!this.failure) {
      const reason = error instanceof Error ? error.message : String(error);
      this.failure = new LedgerError(`ledger write failed, the ledger must be reopened: ${reason}`);
      for (const w of this.waiters) w.reject(this.failure);
      this.waiters = [];
      for (const item of this.queue.splice(0)) if (item.kind === "op") item.reject(this.failure);
    }
    return this.failure;
  }
}
