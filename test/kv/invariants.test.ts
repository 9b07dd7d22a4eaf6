import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { KvError, KvInvariantError, Store } from "../../src/kv/index.ts";

const enc = (s: string) => new TextEncoder().encode(s);

function put(store: Store, key: string): number {
  const tx = store.begin();
  tx.map("m").set(enc(key), enc("v"));
  const result = store.commit(tx);
  assert.ok(result.ok && result.seqno !== null);
  return result.seqno;
}

describe("store version invariants", () => {
  it("versions go up by one per commit, through rollbacks and compaction", () => {
    const store = new Store();
    assert.deepEqual(
      [1, 2, 3].map((i) => put(store, `k${i}`)),
      [1, 2, 3],
    );
    store.compact(2);
    store.rollback(2);
    assert.equal(put(store, "k4"), 3);
    // Bad input is a KvError, not an invariant failure.
    assert.throws(() => store.rollback(1), KvError);
    assert.throws(() => store.apply(5, []), /seqno must be 4/);
  });

  it("a history that no longer matches the versions throws KvInvariantError at the next commit", () => {
    const store = new Store();
    put(store, "a");
    put(store, "b");
    // White-box: lose a rollback point (nothing public can do this; a bug could).
    (store as unknown as { history: unknown[] }).history.splice(1, 1);
    assert.throws(
      () => put(store, "c"),
      (e: Error) =>
        e instanceof KvInvariantError && /history holds 3 states from 0, its version is 3/.test(e.message),
    );
  });
});
