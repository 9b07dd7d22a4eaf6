import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import fc from "fast-check";
import {
  EntryType,
  encodeEntry,
  type LedgerFileHandle,
  LedgerFiles,
  type LedgerIo,
  nodeIo,
  readLedgerDir,
} from "../../src/ledger/index.ts";
import { sampleEntry, tempDir, testSecrets } from "./helpers.ts";

const secrets = testSecrets();

type Command =
  | { kind: "append"; count: number; signatureAt: number }
  | { kind: "truncate"; back: number }
  | { kind: "commit" }
  | { kind: "reopen" };

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("append" as const),
      count: fc.integer({ min: 1, max: 12 }),
      signatureAt: fc.integer({ min: 0, max: 12 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant("truncate" as const), back: fc.integer({ min: 0, max: 15 }) }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "commit" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "reopen" as const }) },
);

test("any sequence of appends, truncations, commits and reopens leaves exactly the model's entries", async (t) => {
  const root = await tempDir(t);
  let run = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(commandArb, { minLength: 1, maxLength: 25 }), async (commands) => {
      const dir = path.join(root, String(run++));
      const frames: Uint8Array[] = []; // model: frames[i] is seqno i+1
      let committed = 0;
      let lastSignature = 0;
      let view = 2;
      let { ledger } = await LedgerFiles.open(dir, { chunkSize: 700 });
      for (const command of commands) {
        if (command.kind === "append") {
          for (let i = 0; i < command.count; i++) {
            const seqno = frames.length + 1;
            const type = i === command.signatureAt ? EntryType.Signature : EntryType.WriteSet;
            const frame = encodeEntry(sampleEntry(seqno, { view, type }), secrets);
            ledger.append(seqno, frame, type === EntryType.Signature);
            frames.push(frame);
            if (type === EntryType.Signature) lastSignature = seqno;
          }
        } else if (command.kind === "truncate") {
          const after = Math.max(committed, frames.length - command.back);
          await ledger.truncate(after);
          frames.length = after;
          lastSignature = Math.min(lastSignature, after);
          view++;
        } else if (command.kind === "commit") {
          committed = Math.max(committed, lastSignature);
          await ledger.markCommitted(committed);
        } else {
          await ledger.close();
          const reopened = await LedgerFiles.open(dir, { chunkSize: 700 });
          assert.equal(reopened.truncatedBytes, 0);
          assert.deepEqual(
            reopened.entries.map((e) => e.frame),
            frames,
          );
          ledger = reopened.ledger;
        }
      }
      await ledger.close();
      const audited: Uint8Array[] = [];
      for await (const record of readLedgerDir(dir)) audited.push(record.entry.frame);
      assert.deepEqual(audited, frames);
      for (const file of await fs.readdir(dir)) {
        const end = /^ledger_\d+-(\d+)\.committed$/.exec(file);
        if (end) assert.ok(Number(end[1]) <= committed, `${file} is marked committed beyond ${committed}`);
      }
      await fs.rm(dir, { recursive: true });
    }),
    { numRuns: 40 },
  );
});

test("after a failed write the ledger refuses further work and fails its waiters", async (t) => {
  const dir = await tempDir(t);
  let failWrites = false;
  const fail = () => {
    if (failWrites) throw new Error("EIO: simulated disk failure");
  };
  const wrap = (h: LedgerFileHandle): LedgerFileHandle => ({
    ...h,
    async write(data, position) {
      fail();
      await h.write(data, position);
    },
    ...(h.writeDurable && {
      async writeDurable(data: Uint8Array, position: number) {
        fail();
        await h.writeDurable!(data, position);
      },
    }),
  });
  const io: LedgerIo = {
    ...nodeIo,
    openFile: async (p) => wrap(await nodeIo.openFile(p)),
    createFile: async (p) => wrap(await nodeIo.createFile(p)),
  };
  const { ledger } = await LedgerFiles.open(dir, { io });
  failWrites = true;
  ledger.append(1, encodeEntry(sampleEntry(1), secrets), false);
  await assert.rejects(ledger.whenDurable(1), /ledger write failed.*EIO/);
  assert.equal(ledger.durableSeqno, 0);
  assert.throws(() => ledger.append(2, encodeEntry(sampleEntry(2), secrets), false), /ledger write failed/);
  await assert.rejects(ledger.markCommitted(1), /ledger write failed/);
  await ledger.close();
});
