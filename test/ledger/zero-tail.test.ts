/**
 * Preallocated chunk files: the open chunk runs ahead of its last entry with synced zeros, every
 * reader takes that zero tail for the chunk's end, torn writes into it are still found and cut
 * off, and a chunk is cut to its last entry before it is closed. Crashes are stood in for by an
 * `io` that fails at the step in question (the process would die there; the test reopens).
 */
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { scanChunk } from "../../src/ledger/chunks.ts";
import {
  DEFAULT_PREALLOCATION,
  type LedgerError,
  type LedgerFileHandle,
  LedgerFiles,
  type LedgerIo,
  ledgerDirArchive,
  nodeIo,
  readLedgerDir,
} from "../../src/ledger/index.ts";
import { frameFor, tempDir, testSecrets } from "./helpers.ts";

const secrets = testSecrets();
const isSignature = (s: number) => s % 5 === 0;
const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
const HEADER = Buffer.from("COCOLDG\x01", "latin1");

async function audit(dir: string): Promise<number[]> {
  const seqnos: number[] = [];
  for await (const record of readLedgerDir(dir)) seqnos.push(record.entry.seqno);
  return seqnos;
}

async function archived(dir: string): Promise<number[]> {
  const seqnos: number[] = [];
  for await (const entry of ledgerDirArchive(dir).entriesFrom(1)) seqnos.push(entry.seqno);
  return seqnos;
}

async function sizeOf(file: string): Promise<number> {
  return (await fs.stat(file)).size;
}

/** Header and frames from..to, as a writer leaves them. */
function chunkBytes(from: number, to: number): Buffer {
  const frames = [];
  for (let s = from; s <= to; s++) frames.push(frameFor(s, secrets));
  return Buffer.concat([HEADER, ...frames]);
}

/** Appends from..to (signatures every 5th) and waits until they are durable. */
async function appendRange(ledger: LedgerFiles, from: number, to: number): Promise<void> {
  for (let s = from; s <= to; s++) ledger.append(s, frameFor(s, secrets), isSignature(s));
  await ledger.whenDurable(to);
}

/** The node's file system, with `change` applied to chunk handles and `rename` replaceable. */
function ioWith(change: (h: LedgerFileHandle) => LedgerFileHandle, rename = nodeIo.rename): LedgerIo {
  return {
    ...nodeIo,
    openFile: async (p) => change(await nodeIo.openFile(p)),
    createFile: async (p) => change(await nodeIo.createFile(p)),
    rename,
  };
}

const allZero = (data: Uint8Array) => data.every((b) => b === 0);

test("the open chunk runs ahead of its last entry with zeros; a closed chunk ends at its last entry", async (t) => {
  const dir = await tempDir(t);
  const { ledger } = await LedgerFiles.open(dir, { chunkSize: 8192 });
  await appendRange(ledger, 1, 148);
  assert.ok(ledger.stats.extensions > 0, "the open chunk was extended");
  await ledger.close();
  const names = (await fs.readdir(dir)).sort((a, b) => Number(/\d+/.exec(a)) - Number(/\d+/.exec(b)));
  assert.ok(names.length >= 3, `several chunks: ${names}`);
  for (const name of names) {
    const data = new Uint8Array(await fs.readFile(path.join(dir, name)));
    const scan = scanChunk(data, name, Number(/\d+/.exec(name)));
    const entriesEnd = 8 + scan.entries.reduce((sum, { entry }) => sum + entry.frame.length, 0);
    if (name.includes("-")) {
      assert.equal(data.length, entriesEnd, `${name} is exactly its entries`);
    } else {
      // The step is the chunk size here (under 1 MiB): the file is a whole number of steps.
      assert.ok(data.length > entriesEnd, "the open chunk has a zero tail");
      assert.equal(data.length % 8192, 0);
      assert.ok(allZero(data.subarray(entriesEnd)));
      assert.equal(scan.zeroTail, data.length - entriesEnd);
    }
  }
  assert.deepEqual(await audit(dir), range(148));
  assert.deepEqual(await archived(dir), range(148));
});

test("with the default sizes the open chunk is extended a megabyte at a time", async (t) => {
  const dir = await tempDir(t);
  const { ledger } = await LedgerFiles.open(dir);
  await appendRange(ledger, 1, 10);
  assert.equal(await sizeOf(path.join(dir, "ledger_1")), DEFAULT_PREALLOCATION);
  assert.equal(ledger.stats.extensions, 1);
  await ledger.close();
  // Preallocation can be turned off: the chunk then grows by appending, as before.
  const plain = await tempDir(t);
  const { ledger: appending } = await LedgerFiles.open(plain, { preallocation: 0 });
  await appendRange(appending, 1, 10);
  await appending.close();
  assert.equal(await sizeOf(path.join(plain, "ledger_1")), chunkBytes(1, 10).length);
});

for (const [what, tail] of [
  ["a zero tail", 4096],
  ["a zero tail a crash cut short mid-extension", 1234],
  ["a single zero byte", 1],
] as const) {
  test(`${what} after the last entry is the open chunk's end for every reader`, async (t) => {
    const dir = await tempDir(t);
    await fs.writeFile(path.join(dir, "ledger_1-5"), chunkBytes(1, 5));
    const open = path.join(dir, "ledger_6");
    await fs.writeFile(open, Buffer.concat([chunkBytes(6, 22), Buffer.alloc(tail)]));
    const length = await sizeOf(open);
    assert.deepEqual(await audit(dir), range(22));
    assert.deepEqual(await archived(dir), range(22));
    const { ledger, entries, truncatedBytes } = await LedgerFiles.open(dir, { chunkSize: 1 << 20 });
    assert.deepEqual([entries.length, truncatedBytes], [22, 0]);
    assert.equal(await sizeOf(open), length, "the zero tail is kept, to be written over");
    await appendRange(ledger, 23, 30);
    await ledger.close();
    assert.deepEqual(await audit(dir), range(30));
    const reopened = await LedgerFiles.open(dir, { chunkSize: 1 << 20 });
    assert.deepEqual([reopened.entries.length, reopened.truncatedBytes], [30, 0]);
    await reopened.ledger.close();
  });
}

/** Torn writes over the zero tail: what a crash mid-batch leaves, bytes after the last entry. */
const frame23 = frameFor(23, secrets);
const badChecksum = Uint8Array.from(frame23);
badChecksum[100]! ^= 0xff;
const secondHalfOnly = Uint8Array.from(frame23);
secondHalfOnly.fill(0, 0, 64); // its start never reached the disk (a write's sectors go in any order)
for (const [what, torn] of [
  ["a partial frame header", frame23.subarray(0, 6)],
  ["half a frame", frame23.subarray(0, 60)],
  ["a whole frame with a bad checksum", badChecksum],
  ["a frame whose start never reached the disk", secondHalfOnly],
] as const) {
  test(`${what} written into the zero tail is a torn write: cut off on open, refused by the audit`, async (t) => {
    const dir = await tempDir(t);
    const open = path.join(dir, "ledger_1");
    const good = chunkBytes(1, 22);
    await fs.writeFile(open, Buffer.concat([good, torn, Buffer.alloc(8192)]));
    await assert.rejects(audit(dir), (e: LedgerError) => {
      assert.equal(e.file, "ledger_1");
      assert.equal(e.offset, good.length);
      assert.equal(e.seqno, 23);
      return /torn write/.test(e.message);
    });
    const { ledger, entries, truncatedBytes } = await LedgerFiles.open(dir, { chunkSize: 1 << 20 });
    let tornEnd = torn.length;
    while (torn[tornEnd - 1] === 0) tornEnd--;
    assert.equal(truncatedBytes, tornEnd, "the torn bytes are reported, not the zeros after them");
    assert.deepEqual(
      entries.map((e) => e.seqno),
      range(22),
    );
    assert.equal(await sizeOf(open), good.length, "cut at the last valid entry");
    await appendRange(ledger, 23, 25);
    await ledger.close();
    assert.deepEqual(await audit(dir), range(25));
  });
}

test("a damaged frame in the zero tail followed by a valid later frame is corruption: nothing is cut", async (t) => {
  const dir = await tempDir(t);
  const open = path.join(dir, "ledger_1");
  const good = chunkBytes(1, 22);
  const bytes = Buffer.concat([
    good,
    badChecksum,
    Buffer.alloc(300),
    frameFor(24, secrets),
    Buffer.alloc(4096),
  ]);
  await fs.writeFile(open, bytes);
  await assert.rejects(LedgerFiles.open(dir), (e: LedgerError) => {
    assert.equal(e.offset, good.length);
    return /valid entries follow/.test(e.message);
  });
  assert.equal(await sizeOf(open), bytes.length, "nothing was truncated");
});

test("non-zero bytes after the zero tail: the audit says where they are, the writer cuts them", async (t) => {
  const dir = await tempDir(t);
  const open = path.join(dir, "ledger_1");
  const good = chunkBytes(1, 22);
  const garbage = Buffer.alloc(50, 0x5a);
  await fs.writeFile(open, Buffer.concat([good, Buffer.alloc(1000), garbage, Buffer.alloc(2000)]));
  await assert.rejects(audit(dir), (e: LedgerError) => {
    assert.equal(e.offset, good.length);
    assert.equal(e.seqno, 23);
    assert.match(e.message, new RegExp(`non-zero bytes at offset ${good.length + 1000}`));
    return true;
  });
  const { ledger, entries, truncatedBytes } = await LedgerFiles.open(dir);
  assert.deepEqual([entries.length, truncatedBytes], [22, 1050]);
  await ledger.close();
  assert.deepEqual(await audit(dir), range(22));
});

test("a closed chunk with a zero tail is damage, named by file and offset", async (t) => {
  const dir = await tempDir(t);
  const closed = chunkBytes(1, 5);
  await fs.writeFile(path.join(dir, "ledger_1-5.committed"), Buffer.concat([closed, Buffer.alloc(4096)]));
  await fs.writeFile(path.join(dir, "ledger_6"), chunkBytes(6, 7));
  const named = (e: LedgerError) =>
    e.file === "ledger_1-5.committed" && e.offset === closed.length && /4096 zero bytes/.test(e.message);
  await assert.rejects(
    LedgerFiles.open(dir),
    (e: LedgerError) => named(e) && /closed chunk is damaged/.test(e.message),
  );
  // The audit checks the chunk's entries, which are whole, and stops after them.
  const seen: number[] = [];
  await assert.rejects(
    (async () => {
      for await (const record of readLedgerDir(dir)) seen.push(record.entry.seqno);
    })(),
    named,
  );
  assert.deepEqual(seen, range(5));
});

test("a closed chunk whose last entry reads back as zeros: open and the audit name that entry's seqno", async (t) => {
  const dir = await tempDir(t);
  const closed = chunkBytes(1, 10);
  const lastFrame = frameFor(10, secrets).length;
  closed.fill(0, closed.length - lastFrame); // a lost block, read back as zeros
  await fs.writeFile(path.join(dir, "ledger_1-10.committed"), closed);
  await fs.writeFile(path.join(dir, "ledger_11"), chunkBytes(11, 12));
  const names10 = (e: LedgerError) =>
    e.file === "ledger_1-10.committed" && e.seqno === 10 && e.offset === closed.length - lastFrame;
  await assert.rejects(LedgerFiles.open(dir), names10);
  await assert.rejects(audit(dir), names10);
});

test("a crash between cutting a full chunk and renaming it leaves an open chunk that carries on", async (t) => {
  const dir = await tempDir(t);
  const rename = async (from: string, to: string) => {
    if (/ledger_\d+$/.test(from)) throw new Error("crash before the rename");
    await nodeIo.rename(from, to);
  };
  const { ledger } = await LedgerFiles.open(dir, { chunkSize: 4096, io: ioWith((h) => h, rename) });
  for (let s = 1; s <= 60; s++) ledger.append(s, frameFor(s, secrets), isSignature(s));
  await assert.rejects(ledger.whenDurable(60), /crash before the rename/);
  assert.ok(ledger.stats.extensions > 0);
  await ledger.close();
  // The cut was durable before the rename: the chunk, still open, holds its entries and no more.
  const data = new Uint8Array(await fs.readFile(path.join(dir, "ledger_1")));
  const scan = scanChunk(data, "ledger_1", 1);
  assert.equal(scan.zeroTail, 0);
  assert.equal(scan.goodLength, data.length);
  const durable = scan.entries.length;
  assert.ok(durable >= 5 && isSignature(durable), `the chunk ends on its signature (${durable})`);
  const reopened = await LedgerFiles.open(dir, { chunkSize: 4096 });
  assert.equal(reopened.truncatedBytes, 0);
  assert.equal(reopened.entries.length, durable);
  await appendRange(reopened.ledger, durable + 1, durable + 30);
  await reopened.ledger.close();
  assert.deepEqual(await audit(dir), range(durable + 30));
  const names = await fs.readdir(dir);
  assert.ok(
    names.some((n) => n.startsWith(`ledger_1-`)),
    `the old chunk closed at the next signature: ${names}`,
  );
});

test("a crash mid-extension leaves a shorter zero tail: nothing durable is lost and writing carries on", async (t) => {
  const dir = await tempDir(t);
  let crashed = false;
  const crashOnZeros = (h: LedgerFileHandle): LedgerFileHandle => ({
    ...h,
    async writeDurable(data, position) {
      if (data.length > 1000 && allZero(data) && position > 8) {
        // Half the zeros reached the disk, then the power went.
        await h.write(data.subarray(0, data.length / 2 + 7), position);
        crashed = true;
        throw new Error("crash mid-extension");
      }
      await h.writeDurable!(data, position);
    },
  });
  const { ledger } = await LedgerFiles.open(dir, {
    chunkSize: 1 << 20,
    preallocation: 16384,
    io: ioWith(crashOnZeros),
  });
  // The first extension (from the header) goes through; the crash comes at the next one.
  let durable = 0;
  ledger.onDurable((s) => {
    durable = s;
  });
  for (let s = 1; s <= 400 && !crashed; s++) {
    ledger.append(s, frameFor(s, secrets), isSignature(s));
    if (s % 8 === 0) await ledger.whenDurable(s).catch(() => undefined);
  }
  assert.ok(crashed, "an extension was under way when the process stopped");
  await ledger.close();
  const length = await sizeOf(path.join(dir, "ledger_1"));
  assert.notEqual(length % 16384, 0, "the file ends inside the interrupted extension");
  const reopened = await LedgerFiles.open(dir, { chunkSize: 1 << 20, preallocation: 16384 });
  assert.equal(reopened.truncatedBytes, 0);
  assert.ok(reopened.entries.length >= durable, `durable ${durable}, on disk ${reopened.entries.length}`);
  const last = reopened.entries.length;
  await appendRange(reopened.ledger, last + 1, last + 200);
  await reopened.ledger.close();
  assert.deepEqual(await audit(dir), range(last + 200));
});

test("an extension without space is given back and the chunk grows by appending; the next chunk tries again", async (t) => {
  const dir = await tempDir(t);
  let full = true;
  const noSpaceForZeros = (h: LedgerFileHandle): LedgerFileHandle => ({
    ...h,
    async writeDurable(data, position) {
      if (full && data.length > 1000 && allZero(data)) {
        await h.write(data.subarray(0, 1000), position); // as much as fitted
        throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
      }
      await h.writeDurable!(data, position);
    },
  });
  const { ledger } = await LedgerFiles.open(dir, { chunkSize: 4096, io: ioWith(noSpaceForZeros) });
  await appendRange(ledger, 1, 5);
  assert.equal(ledger.stats.extensionsRefused, 1);
  assert.equal(ledger.stats.extensions, 0);
  // No zero tail: the partial extension was cut off, and the batch was appended.
  assert.equal(await sizeOf(path.join(dir, "ledger_1")), chunkBytes(1, 5).length);
  await appendRange(ledger, 6, 10);
  assert.equal(ledger.stats.extensionsRefused, 1, "not retried within the chunk");
  full = false;
  await appendRange(ledger, 11, 60);
  assert.ok(ledger.stats.extensions > 0, "a later chunk is preallocated again");
  await ledger.close();
  assert.deepEqual(await audit(dir), range(60));
});
