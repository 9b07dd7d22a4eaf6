import assert from "node:assert/strict";
import { test } from "node:test";
import { KvError, Store } from "../../src/kv/index.ts";
import { b, put, str } from "./util.ts";

test("readAt reads any held version, not what was applied since; outside the held versions it throws", () => {
  const store = new Store();
  put(store, "public:m", { k: "one" });
  put(store, "public:m", { k: "two", other: "x" });
  put(store, "public:m", { k: null });
  assert.equal(str(store.readAt(1, "public:m", b("k"))), "one");
  assert.equal(str(store.readAt(2, "public:m", b("k"))), "two");
  assert.equal(store.readAt(3, "public:m", b("k")), undefined);
  assert.equal(store.readAt(1, "public:m", b("other")), undefined);
  assert.equal(store.readAt(0, "public:m", b("k")), undefined);
  assert.equal(store.readAt(2, "public:none", b("k")), undefined);
  store.compact(2);
  assert.throws(() => store.readAt(1, "public:m", b("k")), KvError);
  assert.throws(() => store.readAt(4, "public:m", b("k")), KvError);
  assert.throws(() => store.readAt(2, "", b("k")), KvError);
  assert.equal(str(store.readAt(2, "public:m", b("k"))), "two");
  // A rolled-back version is gone; the one that replaces it is read instead.
  store.rollback(2);
  put(store, "public:m", { k: "three" });
  assert.equal(str(store.readAt(3, "public:m", b("k"))), "three");
});
