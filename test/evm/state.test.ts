import assert from "node:assert/strict";
import { test } from "node:test";
import { Account, createAddressFromString, hexToBytes, setLengthLeft } from "@ethereumjs/util";
import { EVM_MAPS } from "../../src/evm/index.ts";
import { KvStateManager } from "../../src/evm/state.ts";
import { Store } from "../../src/kv/index.ts";

const A = createAddressFromString("0x00000000000000000000000000000000000000aa");
const B = createAddressFromString("0x00000000000000000000000000000000000000bb");
const slot = (n: number) => setLengthLeft(new Uint8Array([n]), 32);
const value = (n: number) => new Uint8Array([n]);

function committed(store: Store, run: (s: KvStateManager) => Promise<void>) {
  return async () => {
    const tx = store.begin();
    const state = new KvStateManager(tx);
    await run(state);
    state.flush();
    const result = store.commit(tx);
    assert.ok(result.ok);
  };
}

test("checkpoints are overlays: commit merges, revert drops, nothing reaches the KV before flush", async () => {
  const store = new Store();
  const tx = store.begin();
  const state = new KvStateManager(tx);
  await state.putAccount(A, new Account(1n, 5n));
  await state.putStorage(A, slot(1), value(7));
  await state.checkpoint();
  await state.putStorage(A, slot(1), value(8));
  await state.checkpoint();
  await state.putStorage(A, slot(2), value(9));
  await state.revert();
  await state.commit();
  assert.deepEqual(await state.getStorage(A, slot(1)), value(8));
  assert.deepEqual(await state.getStorage(A, slot(2)), new Uint8Array(0));
  assert.ok(tx.isReadOnly, "nothing is written to the KV transaction before flush");
  state.flush();
  assert.equal(tx.writeSet().find((m) => m.name === EVM_MAPS.storage)?.updates.length, 1);
  tx.abandon();
});

test("original storage is the value before the Ethereum transaction; clearStorage removes a contract's slots", async () => {
  const store = new Store();
  await committed(store, async (s) => {
    await s.putAccount(A, new Account(0n, 0n));
    await s.putStorage(A, slot(1), value(1));
    await s.putStorage(A, slot(2), value(2));
    await s.putStorage(B, slot(1), value(3));
  })();
  const tx = store.begin();
  const state = new KvStateManager(tx);
  await state.putStorage(A, slot(1), value(42));
  assert.deepEqual(await state.originalStorageCache.get(A, slot(1)), value(1));
  assert.deepEqual(await state.getStorage(A, slot(1)), value(42));
  await state.checkpoint();
  await state.clearStorage(A);
  assert.deepEqual(await state.getStorage(A, slot(2)), new Uint8Array(0));
  await state.revert();
  assert.deepEqual(await state.getStorage(A, slot(2)), value(2), "a reverted clear keeps the slots");
  await state.clearStorage(A);
  await state.putStorage(A, slot(3), value(4));
  state.flush();
  assert.ok(store.commit(tx).ok);
  const after = new KvStateManager(store.begin());
  assert.deepEqual(await after.getStorage(A, slot(1)), new Uint8Array(0));
  assert.deepEqual(await after.getStorage(A, slot(2)), new Uint8Array(0));
  assert.deepEqual(await after.getStorage(A, slot(3)), value(4));
  assert.deepEqual(await after.getStorage(B, slot(1)), value(3), "another account's storage is untouched");
});

test("code is stored by hash and read back through the account", async () => {
  const store = new Store();
  const code = hexToBytes("0x6001600055");
  await committed(store, async (s) => {
    await s.putAccount(A, new Account());
    await s.putCode(A, code);
  })();
  const state = new KvStateManager(store.begin());
  assert.deepEqual(await state.getCode(A), code);
  assert.equal(await state.getCodeSize(A), code.length);
  assert.deepEqual(await state.getCode(B), new Uint8Array(0));
});
