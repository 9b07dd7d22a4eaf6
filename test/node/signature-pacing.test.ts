import assert from "node:assert/strict";
import { before, test } from "node:test";
import { generateP384KeyPair, nodeIdOf, p384PrivateKey, sha256 } from "../../src/crypto/index.ts";
import { LedgerSecrets, LedgerState, type SigningKeys } from "../../src/ledger/index.ts";
import type { Environment } from "../../src/node/env.ts";
import {
  defaultMaxInFlight,
  PIPELINE_SHARE,
  SignatureScheduler,
  type SigningSettings,
} from "../../src/node/signing.ts";

/**
 * Signature pacing (src/node/signing.ts): a lone write is signed at the end of its own batch,
 * while under a burst a signature in flight holds the next one back for half a commit round (and
 * at most `maxInFlight` are in flight), so there are fewer signatures than write batches, writes
 * that arrive behind a signature in flight do not wait for it to commit, and every write still
 * ends up under one.
 */

let keys: SigningKeys;
before(() => {
  const node = generateP384KeyPair();
  const service = generateP384KeyPair();
  keys = {
    nodeId: nodeIdOf(node.publicKeyPem),
    nodeCertPem: "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
    nodePrivateKey: p384PrivateKey(node.privateKeyPem),
    servicePrivateKey: p384PrivateKey(service.privateKeyPem),
    serviceKid: sha256(new TextEncoder().encode("kid")),
  };
});

/** A primary's ledger state with a hand-driven clock, and its scheduler (not started: no timer). */
function primary(settings: SigningSettings = { maxTransactions: 1000, maxIntervalMs: 20 }) {
  let counter = 0;
  const clock = { now: 1_800_000_000_000 };
  const env: Environment = {
    now: () => clock.now,
    randomBytes: (n) => {
      const bytes = new Uint8Array(n);
      new DataView(bytes.buffer).setUint32(0, ++counter);
      return bytes;
    },
  };
  const signatures: number[] = [];
  const state = new LedgerState(
    env,
    keys,
    new LedgerSecrets([{ version: 0, key: new Uint8Array(32) }]),
    {
      append: (seqno, _frame, isSignature) => {
        if (isSignature) signatures.push(seqno);
        return true;
      },
    },
    1,
  );
  const scheduler = new SignatureScheduler(
    { state, env, isPrimary: true, closing: false, signed: () => {} },
    settings,
  );
  // What start() registers, without its interval timer.
  state.onCommit((commit) => (scheduler as unknown as { committed(c: number): void }).committed(commit));
  let key = 0;
  /** One client write that waits for commit, as rpc-port does. */
  const write = () => {
    const tx = state.store.begin();
    tx.map("public:records").set(new Uint8Array([key >> 8, key++ & 255]), new Uint8Array([1]));
    const outcome = state.commitTx(tx);
    assert.ok(outcome.ok);
    scheduler.afterCommit();
    scheduler.wantCommit();
    return outcome.seqno!;
  };
  return { state, scheduler, signatures, write, clock };
}

const microtasks = () => new Promise<void>((resolve) => setImmediate(resolve));

test("a lone write is signed at the end of its own batch", () => {
  const { scheduler, signatures, write } = primary();
  const seqno = write();
  scheduler.signForWaiters(); // the write batch starts
  assert.deepEqual(signatures, [seqno + 1]);
});

test("a second lone write, after the first signature committed, is signed at once too", async () => {
  const { state, scheduler, signatures, write } = primary();
  write();
  scheduler.signForWaiters();
  state.markCommitted(signatures[0]!);
  await microtasks();
  const seqno = write();
  scheduler.signForWaiters();
  assert.deepEqual(signatures.at(-1), seqno + 1);
  assert.equal(signatures.length, 2);
});

test("under a burst, writes that arrive while a signature is in flight share the next one", async () => {
  const { state, scheduler, signatures, write } = primary();
  let batches = 0;
  let last = 0;
  // Ten write batches of five writes; the commit point reaches each signature two batches later.
  const inFlight: number[] = [];
  for (let batch = 0; batch < 10; batch++) {
    for (let i = 0; i < 5; i++) last = write();
    scheduler.signForWaiters();
    batches++;
    const newest = signatures.at(-1);
    if (newest !== undefined && newest !== inFlight.at(-1)) inFlight.push(newest);
    if (batch % 2 === 1 && inFlight.length > 0) {
      state.markCommitted(inFlight.shift()!);
      await microtasks();
      const signedNow = signatures.at(-1);
      if (signedNow !== undefined && signedNow !== inFlight.at(-1) && signedNow > state.commitSeqno)
        inFlight.push(signedNow);
    }
  }
  assert.ok(signatures.length < batches, `${signatures.length} signatures for ${batches} batches`);
  // Once the signatures in flight commit, every write is under a committed signature.
  while (inFlight.length > 0) {
    state.markCommitted(inFlight.shift()!);
    await microtasks();
    const signedNow = signatures.at(-1)!;
    if (signedNow > state.commitSeqno) inFlight.push(signedNow);
  }
  assert.ok(state.commitSeqno > last, `commit ${state.commitSeqno} covers the last write ${last}`);
  assert.equal(state.txSinceSignature, 0);
});

test("a signature of an earlier view holds nothing back", () => {
  const { state, scheduler, signatures, write } = primary();
  write();
  scheduler.signForWaiters();
  write();
  scheduler.signForWaiters();
  assert.equal(signatures.length, 1, "held back while the first is in flight");
  state.enterView(2); // re-elected: the first signature may never commit in this view
  scheduler.signForWaiters();
  assert.equal(signatures.length, 2);
});

test("the count bound is not paced", () => {
  const { scheduler, signatures, write } = primary({ maxTransactions: 3, maxIntervalMs: 20 });
  write();
  scheduler.signForWaiters();
  for (let i = 0; i < 3; i++) write();
  assert.equal(signatures.length, 2);
  assert.equal(scheduler.stats.byCount, 1);
});

/** One signature emitted and committed `roundMs` later: the scheduler now knows a commit round. */
async function measuredRound(p: ReturnType<typeof primary>, roundMs: number) {
  p.write();
  p.scheduler.signForWaiters();
  p.clock.now += roundMs;
  p.state.markCommitted(p.signatures.at(-1)!);
  await microtasks();
}

test("writes behind a signature in flight get their own after half a round, before the first commits", async () => {
  const p = primary();
  const { state, scheduler, signatures, write, clock } = p;
  await measuredRound(p, 10);
  write();
  scheduler.signForWaiters();
  const first = signatures.at(-1)!;
  assert.equal(scheduler.signaturesInFlight, 1);

  clock.now += 10 * PIPELINE_SHARE - 1;
  const behind = write();
  scheduler.signForWaiters();
  assert.equal(signatures.at(-1), first, "held while the one in flight is younger than half a round");

  clock.now += 1;
  scheduler.signForWaiters();
  const second = signatures.at(-1)!;
  assert.ok(second > behind, "the writes behind the first signature are under a second one");
  assert.ok(state.commitSeqno < first, "emitted before the first committed");
  assert.equal(scheduler.signaturesInFlight, 2);
  assert.equal(scheduler.stats.pipelined, 1);

  // Both commit in order; every write is under a committed signature.
  state.markCommitted(first);
  state.markCommitted(second);
  await microtasks();
  assert.equal(scheduler.signaturesInFlight, 0);
  assert.equal(state.txSinceSignature, 0);
});

test("a held waiter is signed by the scheduler's own timer once the newest in flight is old enough", async () => {
  const p = primary();
  const { scheduler, signatures, write, clock } = p;
  await measuredRound(p, 4);
  write();
  scheduler.signForWaiters();
  const first = signatures.at(-1)!;
  write();
  scheduler.signForWaiters(); // held: the first is 0 ms old
  assert.equal(signatures.at(-1), first);
  clock.now += 4 * PIPELINE_SHARE;
  // No write, no batch, no commit: only the timer set when the waiter was held can sign now.
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.equal(signatures.length, 3, "the held waiter got its signature");
  scheduler.stop();
});

test("no more than maxInFlight signatures are in flight for waiters, however old they are", async () => {
  for (const maxInFlight of [1, 2, 3]) {
    const p = primary({ maxTransactions: 1000, maxIntervalMs: 20, maxInFlight });
    const { state, scheduler, signatures, write, clock } = p;
    await measuredRound(p, 2);
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    let most = 0;
    let pipelined = 0;
    for (let step = 0; step < 300; step++) {
      clock.now += 1 + Math.floor(random() * 3);
      const writes = Math.floor(random() * 4);
      for (let i = 0; i < writes; i++) write();
      scheduler.signForWaiters();
      const inFlight = signatures.filter((s) => s > state.commitSeqno).length;
      most = Math.max(most, inFlight);
      if (inFlight > 1) pipelined++;
      // The oldest signature in flight commits now and then, as a slow round would.
      if (inFlight > 0 && random() < 0.15) {
        state.markCommitted(signatures.find((s) => s > state.commitSeqno)!);
        await microtasks();
      }
    }
    assert.ok(most <= maxInFlight, `${most} signatures in flight with maxInFlight ${maxInFlight}`);
    if (maxInFlight > 1) assert.ok(pipelined > 0, "the schedule did put several in flight");
    else assert.equal(scheduler.stats.pipelined, 0, "maxInFlight 1 is strict pacing");
    // Drain: commit whatever is in flight until every write is under a committed signature.
    for (
      let i = 0;
      i < 100 && (state.txSinceSignature > 0 || state.commitSeqno < state.lastSignatureSeqno);
      i++
    ) {
      clock.now += 5;
      scheduler.signForWaiters();
      state.markCommitted(state.lastSignatureSeqno);
      await microtasks();
    }
    assert.equal(state.txSinceSignature, 0);
    assert.equal(state.commitSeqno, state.lastSignatureSeqno);
    scheduler.stop();
  }
});

test("unless configured, P-256 services pipeline two signatures and P-384 services pace strictly", () => {
  assert.equal(defaultMaxInFlight("secp256r1"), 2);
  assert.equal(defaultMaxInFlight("secp384r1"), 1);
});
