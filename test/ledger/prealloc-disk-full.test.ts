/**
 * A disk that fills while the open chunk is preallocated, on a real (tmpfs) file system: the
 * extension that finds no room is given back and the chunk grows by appending, so the ledger
 * writes until the disk is truly full, then fails with ENOSPC as it always did (a node then
 * fail-stops: test/node/disk-full.test.ts). Everything reported durable is on disk, and once
 * there is space again the ledger opens and carries on. Needs root and mount(8); skipped elsewhere.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { LedgerFiles, readLedgerDir } from "../../src/ledger/index.ts";
import { budget } from "../e2e/waits.ts";
import { frameFor, tempDir, testSecrets } from "./helpers.ts";

const canMount = process.getuid?.() === 0 && hasMount();

function hasMount(): boolean {
  try {
    execFileSync("mount", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

const secrets = testSecrets();
const BATCH = 16;

/** Bytes the file system still gives an unprivileged writer. */
async function freeBytes(dir: string): Promise<number> {
  const stats = await fs.statfs(dir);
  return stats.bavail * stats.bsize;
}

/** Fills the file system with a ballast file, then frees `leave` bytes of it. */
async function fillLeaving(dir: string, leave: number): Promise<string> {
  const ballast = path.join(dir, "ballast");
  const handle = await fs.open(ballast, "w");
  try {
    for (let size = 256 * 1024; size >= 1; size = Math.floor(size / 2)) {
      try {
        for (;;) await handle.write(Buffer.alloc(size, 1));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOSPC") throw e;
      }
    }
    const { size } = await handle.stat();
    await handle.truncate(size - leave);
  } finally {
    await handle.close();
  }
  return ballast;
}

test("a disk that fills under a preallocated chunk: appends use the last bytes, then ENOSPC; nothing durable is lost", {
  timeout: budget(120_000),
  skip: canMount ? false : "needs root and mount(8) for a small tmpfs",
}, async (t) => {
  const mountPoint = await tempDir(t);
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", mountPoint]);
  try {
    const dir = path.join(mountPoint, "ledger");
    const { ledger } = await LedgerFiles.open(dir); // 4 MiB chunks: 1 MiB steps
    let seqno = 0;
    const appendBatch = async () => {
      for (let i = 0; i < BATCH; i++) {
        seqno++;
        ledger.append(seqno, frameFor(seqno, secrets, 32), seqno % 32 === 0);
      }
      await ledger.whenDurable(seqno);
    };
    await appendBatch();
    assert.equal(ledger.stats.extensions, 1);
    // Less room than one step: the next extension cannot be had.
    const ballast = await fillLeaving(mountPoint, 300 * 1024);
    let failure: Error | undefined;
    while (!failure && seqno < 100_000) await appendBatch().catch((e: Error) => (failure = e));
    assert.ok(failure, "the ledger ran out of space");
    assert.match(failure.message, /ENOSPC|no space/i);
    assert.equal(ledger.stats.extensionsRefused, 1, "the extension without room was refused once");
    // It failed only when the disk was full: less than a batch (and a page) was left.
    const left = await freeBytes(mountPoint);
    assert.ok(left < 8192 + BATCH * 400, `${left} bytes were still free when the write failed`);
    const durable = ledger.durableSeqno;
    assert.ok(
      durable > 5000,
      `entries written into the preallocated and then the appended space: ${durable}`,
    );
    await ledger.close();

    // With space again: every durable entry is there, and writing carries on.
    await fs.rm(ballast);
    const reopened = await LedgerFiles.open(dir);
    assert.ok(reopened.entries.length >= durable);
    const count = reopened.entries.length;
    assert.ok(reopened.entries.every((e, i) => e.seqno === i + 1));
    for (let s = count + 1; s <= count + 40; s++) {
      reopened.ledger.append(s, frameFor(s, secrets, 32), s % 32 === 0);
    }
    await reopened.ledger.whenDurable(count + 40);
    await reopened.ledger.close();
    let audited = 0;
    for await (const record of readLedgerDir(dir)) assert.equal(record.entry.seqno, ++audited);
    assert.equal(audited, count + 40);
  } finally {
    execFileSync("umount", ["-l", mountPoint]);
  }
});
