import assert from "node:assert/strict";
import { before, test } from "node:test";
import { generateP384KeyPair, nodeIdOf, p384PrivateKey, sha256 } from "../../src/crypto/index.ts";
import { LedgerSecrets, LedgerState, type SigningKeys } from "../../src/ledger/index.ts";
import type { Environment } from "../../src/node/env.ts";
import { SignatureScheduler } from "../../src/node/signing.ts";

/**
 * Signature pacing (src/node/signing.ts): a lone write is signed at the end of its own batch,
 * while under a burst a signature in flight holds the next one back until it commits, so there
 * are fewer signatures than write batches and every write still ends up under one.
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
function primary(settings = { maxTransactions: 1000, maxIntervalMs: 20 }) {
  let counter = 0;
  const env: Environment = {
    now: () => 1_800_000_000_000,
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
  return { state, scheduler, signatures, write };
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
