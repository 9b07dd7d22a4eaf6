/**
 * The commit point and the group commit: marking entries committed must not hold back the
 * entries behind it (every queued file operation ends the write batch being gathered, so an
 * operation per commit cost the next signature an extra fdatasync on every node).
 */
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import { test } from "node:test";
import { type LedgerFileHandle, LedgerFiles, type LedgerIo, nodeIo } from "../../src/ledger/index.ts";
import { frameFor, tempDir, testSecrets } from "./helpers.ts";

const secrets = testSecrets();
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** The real file system; while `held`, the chosen step (file or directory sync) waits for release. */
function gated(step: "datasync" | "syncDir") {
  let held = false;
  let waiters: Array<() => void> = [];
  const gate = async () => {
    if (held) await new Promise<void>((resolve) => waiters.push(resolve));
  };
  const wrap = (h: LedgerFileHandle): LedgerFileHandle => ({
    ...h,
    async datasync() {
      if (step === "datasync") await gate();
      await h.datasync();
    },
    // A batch's write is its sync when the handle writes durably (O_DSYNC): held the same way.
    ...(h.writeDurable && {
      async writeDurable(data: Uint8Array, position: number) {
        if (step === "datasync") await gate();
        await h.writeDurable!(data, position);
      },
    }),
  });
  const io: LedgerIo = {
    ...nodeIo,
    openFile: async (p) => wrap(await nodeIo.openFile(p)),
    createFile: async (p) => wrap(await nodeIo.createFile(p)),
    async syncDir(dir) {
      if (step === "syncDir") await gate();
      await nodeIo.syncDir(dir);
    },
  };
  return {
    io,
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

test("a commit that closes no chunk does not split the write batch behind it", async (t) => {
  const dir = await tempDir(t);
  const gate = gated("datasync");
  const { ledger } = await LedgerFiles.open(dir, { io: gate.io });
  gate.hold();
  for (let s = 1; s <= 5; s++) ledger.append(s, frameFor(s, secrets), s === 5);
  while (gate.waiting() === 0) await tick();
  // While the first batch's sync is in flight: entries, the commit of the first signature,
  // more entries and the next signature. All of them belong in the next batch.
  ledger.append(6, frameFor(6, secrets), false);
  ledger.append(7, frameFor(7, secrets), false);
  const committed = ledger.markCommitted(5);
  ledger.append(8, frameFor(8, secrets), false);
  ledger.append(9, frameFor(9, secrets), false);
  ledger.append(10, frameFor(10, secrets), true);
  gate.release();
  await Promise.all([committed, ledger.whenDurable(10)]);
  assert.equal(ledger.stats.batches, 2, "one batch for 1-5, one for 6-10");
  assert.equal(ledger.committedSeqno, 5);
  await ledger.close();
});

test("a chunk committed while it is being closed is still renamed .committed", async (t) => {
  const dir = await tempDir(t);
  const gate = gated("syncDir");
  const { ledger } = await LedgerFiles.open(dir, { io: gate.io, chunkSize: 64 });
  gate.hold();
  // Seqno 5 is a signature past the chunk size: the chunk closes, and its rename's directory sync
  // is held, so the chunk is not yet listed as closed when the commit arrives.
  for (let s = 1; s <= 5; s++) ledger.append(s, frameFor(s, secrets), s === 5);
  while (gate.waiting() === 0) await tick();
  const committed = ledger.markCommitted(5);
  gate.release();
  await committed;
  ledger.append(6, frameFor(6, secrets), false);
  await ledger.whenDurable(6);
  const names = (await fs.readdir(dir)).filter((f) => f.startsWith("ledger_")).sort();
  assert.deepEqual(names, ["ledger_1-5.committed", "ledger_6"]);
  await ledger.close();
});
