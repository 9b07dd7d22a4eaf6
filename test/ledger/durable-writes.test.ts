/**
 * A batch of entries costs one durable write on a node (chunk files opened O_DSYNC), and an
 * `io` whose handles cannot write durably still gets a write followed by a datasync.
 */
import assert from "node:assert/strict";
import { constants, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { test } from "node:test";
import {
  type LedgerFileHandle,
  LedgerFiles,
  type LedgerIo,
  nodeIo,
  readLedgerDir,
} from "../../src/ledger/index.ts";
import { frameFor, tempDir, testSecrets } from "./helpers.ts";

const secrets = testSecrets();

/** Counts each kind of call on chunk handles; `durable: false` hides `writeDurable`. */
function countingIo(durable: boolean) {
  const calls = { write: 0, writeDurable: 0, datasync: 0 };
  const wrap = (h: LedgerFileHandle): LedgerFileHandle => {
    const wrapped: LedgerFileHandle = {
      write: (data, position) => {
        calls.write++;
        return h.write(data, position);
      },
      datasync: () => {
        calls.datasync++;
        return h.datasync();
      },
      truncate: (length) => h.truncate(length),
      close: () => h.close(),
    };
    if (durable && h.writeDurable) {
      wrapped.writeDurable = (data, position) => {
        calls.writeDurable++;
        return h.writeDurable!(data, position);
      };
    }
    return wrapped;
  };
  const io: LedgerIo = {
    ...nodeIo,
    openFile: async (p) => wrap(await nodeIo.openFile(p)),
    createFile: async (p) => wrap(await nodeIo.createFile(p)),
  };
  return { io, calls };
}

async function writeBatches(dir: string, io: LedgerIo): Promise<LedgerFiles> {
  const { ledger } = await LedgerFiles.open(dir, { io });
  for (let s = 1; s <= 30; s++) {
    ledger.append(s, frameFor(s, secrets, 10), s % 10 === 0);
    if (s % 10 === 0) await ledger.whenDurable(s);
  }
  return ledger;
}

async function seqnosOnDisk(dir: string): Promise<number[]> {
  const seqnos: number[] = [];
  for await (const record of readLedgerDir(dir)) seqnos.push(record.entry.seqno);
  return seqnos;
}

test("a node's batch is one durable write and no separate datasync", async (t) => {
  const dir = await tempDir(t);
  const { io, calls } = countingIo(true);
  const ledger = await writeBatches(dir, io);
  const afterOpen = { ...calls };
  assert.equal(ledger.stats.batches, 3);
  assert.equal(ledger.stats.extensions, 1, "the new chunk was extended once, with synced zeros");
  assert.equal(calls.writeDurable, 3 + 1, "one durable write per batch, and the extension's");
  assert.equal(calls.datasync, afterOpen.datasync, "no datasync for the batches");
  await ledger.close();
  assert.deepEqual(
    await seqnosOnDisk(dir),
    Array.from({ length: 30 }, (_, i) => i + 1),
  );
});

test("an io whose handles cannot write durably gets a write and a datasync per batch", async (t) => {
  const dir = await tempDir(t);
  const { io, calls } = countingIo(false);
  const { ledger: opened } = await LedgerFiles.open(dir, { io });
  const before = { ...calls };
  await opened.close();
  const ledger = await writeBatches(dir, io);
  assert.equal(calls.writeDurable, 0);
  assert.equal(ledger.stats.extensions, 1);
  assert.equal(calls.write - before.write, 3 + 1, "one write per batch, and the extension's");
  assert.ok(calls.datasync - before.datasync >= 3, "each batch synced before it is durable");
  assert.equal(ledger.durableSeqno, 30);
  await ledger.close();
  assert.deepEqual(
    await seqnosOnDisk(dir),
    Array.from({ length: 30 }, (_, i) => i + 1),
  );
});

test("the open chunk's file descriptor is O_DSYNC on Linux", {
  skip: process.platform !== "linux",
}, async (t) => {
  const dir = await tempDir(t);
  const { ledger } = await LedgerFiles.open(dir);
  // The open chunk's descriptor, found through /proc: its flags (octal) must include O_DSYNC.
  const fd = readdirSync("/proc/self/fd").find((n) => {
    try {
      return /\/ledger_1$/.test(readlinkSync(`/proc/self/fd/${n}`));
    } catch {
      return false;
    }
  });
  assert.ok(fd, "the open chunk has a descriptor");
  const flags = Number.parseInt(
    /flags:\s*([0-7]+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"))![1]!,
    8,
  );
  assert.equal(flags & constants.O_DSYNC, constants.O_DSYNC);
  await ledger.close();
});
