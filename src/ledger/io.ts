/**
 * The few file operations the ledger needs, behind an interface so tests (and later the simulator's
 * disk) can stand in for the real file system, e.g. to hold an fdatasync open or count syncs.
 */
import { constants } from "node:fs";
import fs from "node:fs/promises";

export interface LedgerFileHandle {
  /** Writes all of `data` at `position`. */
  write(data: Uint8Array, position: number): Promise<void>;
  /**
   * Optional: writes all of `data` at `position` and returns only once it is on stable storage,
   * as `write` followed by `datasync` would. A handle opened with O_DSYNC does this in one
   * system call, which saves a round trip through the thread pool on every batch.
   */
  writeDurable?(data: Uint8Array, position: number): Promise<void>;
  datasync(): Promise<void>;
  truncate(length: number): Promise<void>;
  close(): Promise<void>;
}

export interface LedgerIo {
  mkdir(dir: string): Promise<void>;
  readdir(dir: string): Promise<string[]>;
  readFile(path: string): Promise<Uint8Array>;
  /** Opens an existing file for writing. */
  openFile(path: string): Promise<LedgerFileHandle>;
  /** Creates a new file; fails if it exists. */
  createFile(path: string): Promise<LedgerFileHandle>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** Makes creates, renames and unlinks in `dir` durable. */
  syncDir(dir: string): Promise<void>;
}

/**
 * Chunk files are opened with O_DSYNC: every write returns once its data (and the metadata needed
 * to read it back, such as the file size) is on stable storage, like a write followed by
 * fdatasync. So a batch costs one write instead of a write and an fdatasync; `datasync` stays
 * for truncations (O_DSYNC covers writes only) and costs little when nothing is pending. A write
 * over blocks the file already has (files.ts keeps the open chunk preallocated with written zeros)
 * changes no metadata, so it flushes only its data, without a journal commit.
 */
const CHUNK_FLAGS = constants.O_WRONLY | constants.O_DSYNC;

function wrap(handle: fs.FileHandle): LedgerFileHandle {
  const write = async (data: Uint8Array, position: number): Promise<void> => {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await handle.write(data, done, data.length - done, position + done);
      done += bytesWritten;
    }
  };
  return {
    write,
    writeDurable: write,
    datasync: () => handle.datasync(),
    truncate: (length) => handle.truncate(length),
    close: () => handle.close(),
  };
}

export const nodeIo: LedgerIo = {
  async mkdir(dir) {
    await fs.mkdir(dir, { recursive: true });
  },
  readdir: (dir) => fs.readdir(dir),
  readFile: (path) => fs.readFile(path),
  openFile: async (path) => wrap(await fs.open(path, CHUNK_FLAGS)),
  createFile: async (path) => wrap(await fs.open(path, CHUNK_FLAGS | constants.O_CREAT | constants.O_EXCL)),
  rename: (from, to) => fs.rename(from, to),
  unlink: (path) => fs.unlink(path),
  async syncDir(dir) {
    const handle = await fs.open(dir, constants.O_RDONLY);
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
};
