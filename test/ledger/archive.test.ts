import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { LedgerFiles, ledgerDirArchive } from "../../src/ledger/index.ts";
import { frameFor, tempDir, testSecrets } from "./helpers.ts";

async function seqnosFrom(dir: string, from: number, limit = Number.POSITIVE_INFINITY): Promise<number[]> {
  const got: number[] = [];
  for await (const entry of ledgerDirArchive(dir).entriesFrom(from)) {
    got.push(entry.seqno);
    if (got.length >= limit) break;
  }
  return got;
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

test("the archive reads entries from any seqno on, across chunk files, and stops at a torn tail", async (t) => {
  const dir = await tempDir(t);
  const secrets = testSecrets();
  const { ledger } = await LedgerFiles.open(dir, { chunkSize: 2048 });
  for (let s = 1; s <= 120; s++) ledger.append(s, frameFor(s, secrets), s % 5 === 0);
  await ledger.whenDurable(120);
  await ledger.markCommitted(100);
  await ledger.close();
  const files = (await fs.readdir(dir)).sort();
  assert.ok(files.length >= 4, `several chunks: ${files.join(", ")}`);

  for (const from of [1, 2, 37, 60, 99, 101, 119, 120]) {
    assert.deepEqual(await seqnosFrom(dir, from), range(from, 120), `from ${from}`);
  }
  assert.deepEqual(await seqnosFrom(dir, 121), []);
  // The reader stops when its consumer has what it needs.
  assert.deepEqual(await seqnosFrom(dir, 10, 3), [10, 11, 12]);
  // The entries are the frames as written.
  for await (const entry of ledgerDirArchive(dir).entriesFrom(42)) {
    assert.deepEqual(entry.frame, frameFor(42, secrets));
    break;
  }

  // A batch being written at the end of the open chunk: what came before stands.
  const open = files.find((f) => !f.includes("-"))!;
  await fs.appendFile(path.join(dir, open), frameFor(121, secrets).subarray(0, 30));
  assert.deepEqual(await seqnosFrom(dir, 115), range(115, 120));
});

test("a ledger that starts after a snapshot has nothing before it; a file that is not a chunk is refused", async (t) => {
  const dir = await tempDir(t);
  const secrets = testSecrets();
  const { ledger } = await LedgerFiles.open(dir, { chunkSize: 2048, startSeqno: 50 });
  for (let s = 50; s <= 70; s++) ledger.append(s, frameFor(s, secrets), s % 5 === 0);
  await ledger.whenDurable(70);
  await ledger.close();
  assert.deepEqual(await seqnosFrom(dir, 10), []);
  assert.deepEqual(await seqnosFrom(dir, 50), range(50, 70));
  const first = (await fs.readdir(dir)).sort((a, b) => a.localeCompare(b, "en", { numeric: true }))[0]!;
  await fs.writeFile(path.join(dir, first), "this is not a ledger chunk");
  await assert.rejects(seqnosFrom(dir, 50), /not a Coco ledger chunk/);
});
