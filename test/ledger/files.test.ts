import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import {
  decodeEntry,
  EntryType,
  encodeEntry,
  type LedgerFileHandle,
  LedgerFiles,
  type LedgerIo,
  nodeIo,
  readLedgerDir,
} from "../../src/ledger/index.ts";
import { budget } from "../e2e/waits.ts";
import { frameFor, sampleEntry, tempDir, testSecrets } from "./helpers.ts";

const secrets = testSecrets();
const isSignature = (seqno: number, every = 5) => seqno % every === 0;

async function appendRange(ledger: LedgerFiles, from: number, to: number, every = 5): Promise<void> {
  for (let s = from; s <= to; s++) ledger.append(s, frameFor(s, secrets, every), isSignature(s, every));
  await ledger.whenDurable(to);
}

async function chunkNames(dir: string): Promise<string[]> {
  return (await fs.readdir(dir))
    .filter((f) => f.startsWith("ledger_"))
    .sort((a, b) => startOf(a) - startOf(b));
}
const startOf = (name: string) => Number(/^ledger_(\d+)/.exec(name)![1]);

/** The real file system, but while held every datasync waits until the test releases it. */
function gatedIo() {
  let syncs = 0;
  let held = false;
  let waiters: Array<() => void> = [];
  const wrap = (h: LedgerFileHandle): LedgerFileHandle => ({
    ...h,
    async datasync() {
      syncs++;
      if (held) await new Promise<void>((resolve) => waiters.push(resolve));
      await h.datasync();
    },
    // A batch's write is its sync when the handle writes durably (O_DSYNC): counted and held too.
    ...(h.writeDurable && {
      async writeDurable(data: Uint8Array, position: number) {
        syncs++;
        if (held) await new Promise<void>((resolve) => waiters.push(resolve));
        await h.writeDurable!(data, position);
      },
    }),
  });
  const io: LedgerIo = {
    ...nodeIo,
    openFile: async (p) => wrap(await nodeIo.openFile(p)),
    createFile: async (p) => wrap(await nodeIo.createFile(p)),
  };
  return {
    io,
    syncs: () => syncs,
    waiting: () => waiters.length,
    hold() {
      held = true;
    },
    release() {
      held = false;
      for (const w of waiters) w();
      waiters = [];
    },
  };
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

test("entries appended across several chunks come back on reopen, chunks ending on signatures", async (t) => {
  const dir = await tempDir(t);
  const { ledger, entries, truncatedBytes } = await LedgerFiles.open(dir, { chunkSize: 1024 });
  assert.deepEqual([entries.length, truncatedBytes], [0, 0]);
  const frames: Uint8Array[] = [];
  for (let s = 1; s <= 120; s++) {
    const frame = frameFor(s, secrets);
    frames.push(frame);
    ledger.append(s, frame, isSignature(s));
    if (s % 7 === 0) await tick();
  }
  await ledger.whenDurable(120);
  assert.equal(ledger.durableSeqno, 120);
  await ledger.close();

  const names = await chunkNames(dir);
  assert.ok(names.length >= 4, `expected several chunks, got ${names}`);
  assert.match(names.at(-1)!, /^ledger_\d+$/, "the last chunk is the open one");
  for (const name of names.slice(0, -1)) {
    const end = Number(/-(\d+)$/.exec(name)![1]);
    assert.ok(isSignature(end), `${name} must end on a signature`);
    assert.ok((await fs.stat(path.join(dir, name))).size >= 1024);
  }

  const reopened = await LedgerFiles.open(dir, { chunkSize: 1024 });
  assert.equal(reopened.truncatedBytes, 0);
  assert.deepEqual(
    reopened.entries.map((e) => e.frame),
    frames,
  );
  assert.equal(reopened.ledger.lastSeqno, 120);
  await appendRange(reopened.ledger, 121, 130);
  await reopened.ledger.close();

  const audited = [];
  for await (const record of readLedgerDir(dir)) audited.push(record.entry.seqno);
  assert.deepEqual(
    audited,
    Array.from({ length: 130 }, (_, i) => i + 1),
  );
});

test("group commit: appends made while a sync is in flight share the next write and sync", {
  timeout: budget(30_000),
}, async (t) => {
  const dir = await tempDir(t);
  const gate = gatedIo();
  const { ledger } = await LedgerFiles.open(dir, { io: gate.io });
  const before = gate.syncs();
  const durable: number[] = [];
  ledger.onDurable((s) => durable.push(s));
  gate.hold();
  ledger.append(1, frameFor(1, secrets), false);
  while (gate.waiting() === 0) await tick();
  // 99 more appends, each in its own turn of the event loop, all while the first sync is stuck.
  for (let s = 2; s <= 100; s++) {
    ledger.append(s, frameFor(s, secrets), isSignature(s));
    await tick();
  }
  assert.equal(ledger.durableSeqno, 0, "nothing is durable before its sync returns");
  assert.deepEqual(durable, []);
  gate.release();
  await ledger.whenDurable(100);
  // Two batches, and the one extension of the new chunk (synced zeros) before the first.
  assert.equal(ledger.stats.extensions, 1);
  assert.equal(gate.syncs() - before, 3);
  assert.equal(ledger.stats.batches, 2);
  assert.deepEqual(durable, [1, 100]);
  await ledger.close();
});

test("a burst of appends in one synchronous run is written as one batch", async (t) => {
  const dir = await tempDir(t);
  const { ledger } = await LedgerFiles.open(dir);
  for (let s = 1; s <= 500; s++) ledger.append(s, frameFor(s, secrets), isSignature(s));
  await ledger.whenDurable(500);
  assert.deepEqual(ledger.stats, { batches: 1, syncs: 2, extensions: 1, extensionsRefused: 0 });
  await ledger.close();
});

test("whenDurable resolves in seqno order, only after the covering sync, and refuses unknown seqnos", {
  timeout: budget(30_000),
}, async (t) => {
  const dir = await tempDir(t);
  const gate = gatedIo();
  const { ledger } = await LedgerFiles.open(dir, { io: gate.io });
  gate.hold();
  const order: number[] = [];
  for (let s = 1; s <= 3; s++) ledger.append(s, frameFor(s, secrets), false);
  const waits = [3, 1, 2].map((s) => ledger.whenDurable(s).then(() => order.push(s)));
  while (gate.waiting() === 0) await tick();
  for (let s = 4; s <= 6; s++) ledger.append(s, frameFor(s, secrets), isSignature(s));
  const last = ledger.whenDurable(6).then(() => order.push(6));
  await tick();
  assert.deepEqual(order, []);
  await assert.rejects(ledger.whenDurable(7), /has not been appended/);
  gate.release();
  await Promise.all([...waits, last]);
  assert.deepEqual(order, [1, 2, 3, 6]);
  await ledger.whenDurable(2); // already durable: resolves at once
  await ledger.close();
});

test("append refuses gaps, repeats and frames for another seqno", async (t) => {
  const dir = await tempDir(t);
  const { ledger } = await LedgerFiles.open(dir);
  assert.throws(() => ledger.append(2, frameFor(2, secrets), false), /expected seqno 1, got 2/);
  assert.throws(() => ledger.append(1, frameFor(2, secrets), false), /frame holds seqno 2/);
  assert.throws(() => ledger.append(1, new Uint8Array(10), false), /complete entry frame/);
  assert.throws(() => ledger.append(1, frameFor(1, secrets), true), /isSignature is true but the frame/);
  ledger.append(1, frameFor(1, secrets), false);
  assert.throws(() => ledger.append(1, frameFor(1, secrets), false), /expected seqno 2/);
  await ledger.close();
  assert.throws(() => ledger.append(2, frameFor(2, secrets), false), /closed/);
});

test("markCommitted renames closed chunks to .committed; truncation below it is refused", async (t) => {
  const dir = await tempDir(t);
  const { ledger } = await LedgerFiles.open(dir, { chunkSize: 600 });
  await appendRange(ledger, 1, 40);
  const closed = (await chunkNames(dir)).filter((n) => n.includes("-"));
  assert.ok(closed.length >= 3);
  const secondEnd = Number(/-(\d+)$/.exec(closed[1]!)![1]);
  await ledger.markCommitted(secondEnd);
  const names = await chunkNames(dir);
  assert.ok(names[0]!.endsWith(".committed") && names[1]!.endsWith(".committed"));
  assert.ok(!names[2]!.endsWith(".committed"));
  await assert.rejects(ledger.truncate(secondEnd - 1), /are committed/);
  await assert.rejects(ledger.markCommitted(41), /last appended is 40/);
  await ledger.close();
  const reopened = await LedgerFiles.open(dir, { chunkSize: 600 });
  await assert.rejects(reopened.ledger.truncate(secondEnd - 1), /are committed/);
  await reopened.ledger.close();
});

test("truncate drops a suffix inside the open chunk and across closed chunks; appends continue", async (t) => {
  const dir = await tempDir(t);
  const { ledger } = await LedgerFiles.open(dir, { chunkSize: 600 });
  await appendRange(ledger, 1, 60);
  await ledger.truncate(58); // inside the open chunk
  assert.equal(ledger.lastSeqno, 58);
  const names = await chunkNames(dir);
  const middle = names.find((n) => n.includes("-") && startOf(n) > 1)!;
  const cut = startOf(middle) + 1; // inside a closed chunk
  await ledger.truncate(cut);
  assert.deepEqual([ledger.lastSeqno, ledger.durableSeqno], [cut, cut]);
  assert.equal((await chunkNames(dir)).at(-1), `ledger_${startOf(middle)}`);
  // New entries for the same seqnos, in a new view.
  const replacement = (s: number) =>
    encodeEntry(
      sampleEntry(s, { view: 3, type: isSignature(s) ? EntryType.Signature : EntryType.WriteSet }),
      secrets,
    );
  for (let s = cut + 1; s <= cut + 20; s++) ledger.append(s, replacement(s), isSignature(s));
  await ledger.whenDurable(cut + 20);
  await ledger.close();
  const reopened = await LedgerFiles.open(dir, { chunkSize: 600 });
  assert.deepEqual(
    reopened.entries.map((e) => e.seqno),
    Array.from({ length: cut + 20 }, (_, i) => i + 1),
  );
  assert.deepEqual(
    reopened.entries.map((e) => e.view),
    Array.from({ length: cut + 20 }, (_, i) => (i + 1 <= cut ? 2 : 3)),
  );
  await reopened.ledger.close();
});

test("truncate at a chunk boundary and truncate racing queued appends", {
  timeout: budget(30_000),
}, async (t) => {
  const dir = await tempDir(t);
  const gate = gatedIo();
  const { ledger } = await LedgerFiles.open(dir, { chunkSize: 600, io: gate.io });
  await appendRange(ledger, 1, 30);
  const firstClosed = (await chunkNames(dir))[0]!;
  const boundary = Number(/-(\d+)$/.exec(firstClosed)![1]);
  await ledger.markCommitted(0); // a no-op queued behind any chunk rotation: the ledger is now idle
  const batches = ledger.stats.batches;
  gate.hold();
  for (let s = 31; s <= 35; s++) ledger.append(s, frameFor(s, secrets), isSignature(s));
  // Wait until 31..35 are written and their sync is in flight.
  while (gate.waiting() === 0 || ledger.stats.batches === batches) await tick();
  for (let s = 36; s <= 40; s++) ledger.append(s, frameFor(s, secrets), isSignature(s));
  const lost = ledger.whenDurable(38);
  const reported: number[] = [];
  ledger.onDurable((s) => reported.push(s));
  const truncated = ledger.truncate(boundary);
  await assert.rejects(lost, /truncated before it became durable/);
  // Appends right after the truncate call take the new seqnos at once.
  ledger.append(boundary + 1, frameFor(boundary + 1, secrets), isSignature(boundary + 1));
  gate.release();
  await truncated;
  await ledger.whenDurable(boundary + 1);
  assert.equal(ledger.durableSeqno, boundary + 1);
  // The batch that was in flight during the truncate call must not count its doomed entries.
  assert.deepEqual(reported, [boundary + 1]);
  await ledger.close();
  assert.deepEqual(await chunkNames(dir), [firstClosed, `ledger_${boundary + 1}`]);
  const reopened = await LedgerFiles.open(dir);
  assert.equal(reopened.entries.length, boundary + 1);
  assert.deepEqual(
    reopened.entries.map((e) => decodeEntry(e.frame).seqno),
    Array.from({ length: boundary + 1 }, (_, i) => i + 1),
  );
  await reopened.ledger.close();
});

test("a ledger that starts after a snapshot begins at startSeqno and cannot be cut before it", async (t) => {
  const dir = await tempDir(t);
  const { ledger } = await LedgerFiles.open(dir, { startSeqno: 101, chunkSize: 600 });
  assert.deepEqual([ledger.lastSeqno, ledger.durableSeqno], [100, 100]);
  assert.throws(() => ledger.append(1, frameFor(1, secrets), false), /expected seqno 101/);
  await appendRange(ledger, 101, 130);
  await assert.rejects(ledger.truncate(99), /starts at 101/);
  await ledger.truncate(100);
  assert.equal(ledger.lastSeqno, 100);
  await appendRange(ledger, 101, 120);
  await ledger.close();
  const reopened = await LedgerFiles.open(dir, { startSeqno: 5 }); // ignored: chunks exist
  assert.deepEqual(
    reopened.entries.map((e) => e.seqno),
    Array.from({ length: 20 }, (_, i) => i + 101),
  );
  await reopened.ledger.close();
  await assert.rejects(LedgerFiles.open(dir, { startSeqno: 0 }), /start seqno/);
});

test("restartAt replaces the whole ledger, committed chunks too, with an empty one at the new start", async (t) => {
  const dir = await tempDir(t);
  const { ledger } = await LedgerFiles.open(dir, { chunkSize: 600 });
  await appendRange(ledger, 1, 40);
  await ledger.markCommitted(30);
  ledger.append(41, frameFor(41, secrets), false); // queued, never written
  const doomed = ledger.whenDurable(41);
  const restarted = ledger.restartAt(501);
  await assert.rejects(doomed, /snapshot replaced the ledger/);
  await restarted;
  assert.deepEqual([ledger.lastSeqno, ledger.durableSeqno, ledger.committedSeqno], [500, 500, 500]);
  assert.deepEqual(await chunkNames(dir), ["ledger_501"]);
  await assert.rejects(ledger.truncate(499), /are committed/);
  await appendRange(ledger, 501, 510);
  await ledger.close();
  const reopened = await LedgerFiles.open(dir);
  assert.deepEqual(
    reopened.entries.map((e) => e.seqno),
    Array.from({ length: 10 }, (_, i) => i + 501),
  );
  await reopened.ledger.close();
  await assert.rejects(reopened.ledger.restartAt(0), /start seqno|closed|unusable/);
});
