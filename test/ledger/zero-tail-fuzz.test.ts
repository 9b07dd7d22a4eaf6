/**
 * Damaged open chunks with a zero tail, through everything that reads a ledger directory: the
 * writer's recovery (LedgerFiles.open), the strict audit reader and the receipts' archive. Each
 * must refuse with a LedgerError that says what is wrong, or accept only entries exactly as they
 * were written; after the writer's recovery every reader agrees and writing carries on.
 */
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import fc from "fast-check";
import { LedgerError, LedgerFiles, ledgerDirArchive, readLedgerDir } from "../../src/ledger/index.ts";
import { budget } from "../e2e/waits.ts";
import { mutated } from "../fuzz/mutate.ts";
import { frameFor, tempDir, testSecrets } from "./helpers.ts";

const secrets = testSecrets();
const frames = Array.from({ length: 40 }, (_, i) => frameFor(i + 1, secrets));
const HEADER = Buffer.from("COCOLDG\x01", "latin1");
const closedChunk = Buffer.concat([HEADER, ...frames.slice(0, 5)]);
const openChunk = new Uint8Array(Buffer.concat([HEADER, ...frames.slice(5, 22), Buffer.alloc(3000)]));

/** Seqnos read, each checked to be the frame written; a LedgerError is a clear refusal (undefined). */
async function readAll(
  read: () => AsyncIterable<{ seqno: number; frame: Uint8Array }>,
): Promise<number[] | undefined> {
  const seqnos: number[] = [];
  try {
    for await (const entry of read()) {
      assert.deepEqual(entry.frame, frames[entry.seqno - 1], `entry ${entry.seqno} is not the one written`);
      seqnos.push(entry.seqno);
    }
  } catch (e) {
    if (!(e instanceof LedgerError)) throw e;
    assert.ok(e.message.length > 10, "the refusal says something");
    return undefined;
  }
  return seqnos;
}

const audit = (dir: string) =>
  readAll(async function* () {
    for await (const record of readLedgerDir(dir)) yield record.entry;
  });
const archive = (dir: string) => readAll(() => ledgerDirArchive(dir).entriesFrom(1));
const contiguous = (seqnos: number[]) => seqnos.every((s, i) => s === i + 1);

test("damaged open chunks with a zero tail: a clear refusal, or exactly the entries written", {
  timeout: budget(120_000),
}, async (t) => {
  const root = await tempDir(t);
  // Undamaged, the zero tail is the chunk's end: every reader takes all 22 entries, nothing is cut.
  const pristine = path.join(root, "pristine");
  await fs.mkdir(pristine);
  await fs.writeFile(path.join(pristine, "ledger_1-5"), closedChunk);
  await fs.writeFile(path.join(pristine, "ledger_6"), openChunk);
  const all = Array.from({ length: 22 }, (_, i) => i + 1);
  assert.deepEqual(await audit(pristine), all);
  assert.deepEqual(await archive(pristine), all);
  const first = await LedgerFiles.open(pristine, { chunkSize: 1 << 20 });
  assert.deepEqual([first.entries.length, first.truncatedBytes], [22, 0]);
  await first.ledger.close();
  let run = 0;
  const outcomes = { refused: 0, opened: 0, cut: 0 };
  await fc.assert(
    fc.asyncProperty(mutated([openChunk]), async (bytes) => {
      const dir = path.join(root, String(run++));
      await fs.mkdir(dir);
      await fs.writeFile(path.join(dir, "ledger_1-5"), closedChunk);
      await fs.writeFile(path.join(dir, "ledger_6"), bytes);
      const audited = await audit(dir);
      if (audited) assert.ok(contiguous(audited));
      const read = await archive(dir);
      if (read) assert.ok(contiguous(read));
      let opened: Awaited<ReturnType<typeof LedgerFiles.open>>;
      try {
        opened = await LedgerFiles.open(dir, { chunkSize: 1 << 20 });
      } catch (e) {
        if (!(e instanceof LedgerError)) throw e;
        outcomes.refused++;
        return;
      }
      outcomes.opened++;
      if (opened.truncatedBytes > 0) outcomes.cut++;
      const kept = opened.entries.map((e) => e.seqno);
      assert.ok(kept.length >= 5 && contiguous(kept));
      for (const e of opened.entries) assert.deepEqual(e.frame, frames[e.seqno - 1]);
      // What the audit accepted before recovery, recovery keeps (it cuts only a torn tail).
      if (audited) assert.deepEqual(kept, audited);
      const next = kept.length + 1;
      opened.ledger.append(next, frames[next - 1]!, next % 5 === 0);
      await opened.ledger.whenDurable(next);
      await opened.ledger.close();
      const after = [...kept, next];
      assert.deepEqual(await audit(dir), after);
      assert.deepEqual(await archive(dir), after);
      const again = await LedgerFiles.open(dir, { chunkSize: 1 << 20 });
      assert.equal(again.truncatedBytes, 0);
      assert.equal(again.entries.length, after.length);
      await again.ledger.close();
    }),
    { numRuns: 120, seed: 9 },
  );
  // The damage was varied enough to reach all three outcomes.
  assert.ok(outcomes.refused > 0 && outcomes.opened > 0 && outcomes.cut > 0, JSON.stringify(outcomes));
});
