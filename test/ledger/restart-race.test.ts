import assert from "node:assert/strict";
import { test } from "node:test";
import { type LedgerFileHandle, LedgerFiles, type LedgerIo, nodeIo } from "../../src/ledger/index.ts";
import { budget } from "../e2e/waits.ts";
import { frameFor, tempDir, testSecrets } from "./helpers.ts";

const secrets = testSecrets();
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** The real file system, but while held every datasync waits until the test releases it. */
function gatedIo() {
  let held = false;
  let waiters: Array<() => void> = [];
  const wrap = (h: LedgerFileHandle): LedgerFileHandle => ({
    ...h,
    async datasync() {
      if (held) await new Promise<void>((resolve) => waiters.push(resolve));
      await h.datasync();
    },
    // A batch's write is its sync when the handle writes durably (O_DSYNC): held the same way.
    ...(h.writeDurable && {
      async writeDurable(data: Uint8Array, position: number) {
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

// A backup whose diverging entries are being synced when the primary's snapshot replaces its
// ledger: the old batch must not count as durable, or the new entries would be (they were not
// written) and their real sync would never be reported (the ledger's durable point was ahead).
test("restartAt while a batch's sync is in flight: only entries written after it become durable", {
  timeout: budget(30_000),
}, async (t) => {
  const dir = await tempDir(t);
  const gate = gatedIo();
  const { ledger } = await LedgerFiles.open(dir, { io: gate.io });
  for (let s = 1; s <= 10; s++) ledger.append(s, frameFor(s, secrets), s % 5 === 0);
  await ledger.whenDurable(10);
  const durable: number[] = [];
  ledger.onDurable((s) => durable.push(s));
  gate.hold();
  for (let s = 11; s <= 20; s++) ledger.append(s, frameFor(s, secrets), s % 5 === 0);
  while (gate.waiting() === 0) await tick();
  const restarted = ledger.restartAt(6);
  gate.release();
  await restarted;
  assert.deepEqual([ledger.durableSeqno, ledger.lastSeqno], [5, 5]);
  assert.deepEqual(durable, []);
  ledger.append(6, frameFor(6, secrets), false);
  await ledger.whenDurable(6);
  assert.deepEqual(durable, [6]);
  await ledger.close();
});
