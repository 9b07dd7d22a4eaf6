/**
 * Found by the nemesis's clock faults: the primary's signature interval is measured on the wall
 * clock, so a clock that jumped backwards (or forwards, then back when corrected) made the oldest
 * unsigned transaction look younger than zero, and no interval signature came until the clock
 * caught up again: writes not waiting for commit stayed uncommitted for as long as the jump.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { LedgerState } from "../../src/ledger/index.ts";
import { SignatureScheduler } from "../../src/node/signing.ts";

function scheduler(clockMs: () => number) {
  const signed: number[] = [];
  const state = {
    unsignedSince: 1_000_000,
    txSinceSignature: 3,
    commitSeqno: 0,
    emitSignature: () => 42,
    onCommit: () => {},
  };
  const host = {
    state: state as unknown as LedgerState,
    env: { now: clockMs, randomBytes: (n: number) => new Uint8Array(n) },
    isPrimary: true,
    closing: false,
    signed: (seqno: number) => {
      signed.push(seqno);
      state.txSinceSignature = 0;
    },
  };
  return { scheduler: new SignatureScheduler(host, { maxTransactions: 1000, maxIntervalMs: 20 }), signed };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test("unsigned transactions are signed within the interval after the clock jumps backwards", async () => {
  const { scheduler: s, signed } = scheduler(() => 1_000_000 - 300_000);
  s.start();
  await sleep(100);
  s.stop();
  assert.deepEqual(
    signed,
    [42],
    "signed although the clock now reads before the oldest unsigned transaction",
  );
});

test("and, as before, not before the interval when the clock is steady", async () => {
  const { scheduler: s, signed } = scheduler(() => 1_000_000 + 5);
  s.start();
  await sleep(60);
  s.stop();
  assert.deepEqual(signed, []);
});
