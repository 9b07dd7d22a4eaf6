import assert from "node:assert/strict";
import { test } from "node:test";
import {
  decodeSnapshot,
  encodeSnapshot,
  encodeSnapshotFrom,
  LedgerSecrets,
  SnapshotEncoder,
  snapshotDigest,
} from "../../src/ledger/index.ts";
import { SECRET, snapshotPair } from "../node/snapshot-pair.ts";

/** The reference encoder (snapshot.ts) over the same state the sliced encoder reads. */
function reference(state: Awaited<ReturnType<typeof snapshotPair>>["primary"], seqno: number): Uint8Array {
  const source = state.snapshotSourceAt(seqno);
  return encodeSnapshot(state.store.snapshot(seqno), source.view, state.secrets, source.anchor);
}

test("the sliced encoder writes the reference encoder's bytes, in any slice size, with the file's digest", async () => {
  const pair = await snapshotPair();
  const { primary, write } = pair;
  // Public and private maps, keys of every length, binary bytes, a removed key, an emptied map.
  for (let i = 0; i < 700; i++) {
    write("records", `k${i}`, `value ${"x".repeat(i % 50)}`);
    if (i % 7 === 0) write("public:app.index", String.fromCharCode(0xe9, i % 256, 0), "\u0000\u00ff");
  }
  write("gone", "a", "1");
  const tx = primary.store.begin();
  tx.map("gone").delete(new TextEncoder().encode("a"));
  tx.map("records").delete(new TextEncoder().encode("k3"));
  primary.commitTx(tx);
  const at = primary.emitSignature();
  const expected = reference(primary, at);

  const whole = encodeSnapshotFrom(primary.snapshotSourceAt(at), primary.secrets);
  assert.deepEqual(whole.bytes, expected);
  assert.deepEqual(whole.digest, snapshotDigest(expected));
  assert.deepEqual(primary.encodeSnapshotAt(at), expected);

  for (const budget of [1, 3, 64]) {
    const encoder = new SnapshotEncoder(primary.snapshotSourceAt(at), primary.secrets);
    let steps = 1;
    while (!encoder.step(budget)) steps++;
    assert.ok(steps > 2, `several steps with a budget of ${budget}`);
    assert.deepEqual(encoder.encoded().bytes, expected, `budget ${budget}`);
    assert.deepEqual(encoder.encoded().digest, snapshotDigest(expected));
  }
  const decoded = decodeSnapshot(expected, new LedgerSecrets([{ version: 0, key: SECRET }]));
  assert.deepEqual(decoded.snapshot, primary.store.snapshot(at));
});

test("a version of the store read later is the store as of that seqno, however far it has moved on", async () => {
  const { primary, write } = await snapshotPair();
  for (let i = 0; i < 100; i++) write("records", `k${i}`, "before");
  const at = primary.emitSignature();
  const expected = reference(primary, at);
  const encoder = new SnapshotEncoder(primary.snapshotSourceAt(at), primary.secrets);
  encoder.step(10);
  // Overwrites, removals, new keys and a new map after the snapshot's seqno, then a rollback.
  for (let i = 0; i < 100; i += 2) write("records", `k${i}`, "after");
  write("public:later", "x", "y");
  primary.markCommitted(at);
  const tail = write("records", "late", "z");
  primary.rollback(tail - 1);
  while (!encoder.step(10)) {}
  assert.deepEqual(encoder.encoded().bytes, expected);
});

test("a store with public maps only has no private section", async () => {
  const { primary, write } = await snapshotPair();
  write("public:only", "a", "b");
  const at = primary.emitSignature();
  const bytes = encodeSnapshotFrom(primary.snapshotSourceAt(at), primary.secrets).bytes;
  assert.deepEqual(bytes, reference(primary, at));
  const { secretVersion } = decodeSnapshot(bytes, primary.secrets);
  assert.equal(secretVersion, 0);
});
