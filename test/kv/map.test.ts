import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { KvError, MAX_KEY_BYTES, MAX_VALUE_BYTES, Store } from "../../src/kv/index.ts";
import { b, compareBytes, hex, put, str } from "./util.ts";

test("get, has, set, delete and size within one transaction see its own writes", () => {
  const store = new Store();
  put(store, "m", { a: "1", b: "2" });
  const tx = store.begin();
  const m = tx.map("m");
  assert.equal(str(m.get(b("a"))), "1");
  assert.equal(m.has(b("z")), false);
  m.set(b("z"), b("26"));
  assert.equal(str(m.get(b("z"))), "26");
  assert.equal(m.has(b("z")), true);
  assert.equal(m.delete(b("a")), true);
  assert.equal(m.get(b("a")), undefined);
  assert.equal(m.delete(b("a")), false, "already deleted in this tx");
  assert.equal(m.delete(b("nope")), false);
  assert.equal(m.size(), 2);
  assert.deepEqual(
    m.range().entries.map(([k, v]) => [str(k), str(v)]),
    [
      ["b", "2"],
      ["z", "26"],
    ],
  );
  // Committed state is untouched until commit.
  assert.equal(str(store.read("m", b("a"))), "1");
  assert.equal(store.read("m", b("z")), undefined);
  assert.equal(tx.map("m"), m, "the same handle for the same map");
});

test("values are copied: mutating a buffer after set or after get changes nothing stored", () => {
  const store = new Store();
  const value = b("abc");
  const tx = store.begin();
  tx.map("m").set(b("k"), value);
  value[0] = 0x7a;
  assert.equal(str(tx.map("m").get(b("k"))), "abc");
  store.commit(tx);
  const got = store.read("m", b("k"))!;
  got[0] = 0x7a;
  assert.equal(str(store.read("m", b("k"))), "abc");
  assert.equal(Object.getPrototypeOf(got), Uint8Array.prototype, "plain Uint8Array, not a pooled Buffer");
  assert.equal(got.buffer.byteLength, 3);
});

test("keys are ordered by unsigned bytes, and empty keys and values are allowed", () => {
  const store = new Store();
  const tx = store.begin();
  const m = tx.map("m");
  for (const k of [[0xff], [0x00], [], [0x80], [0x00, 0x00], [0x7f]])
    m.set(new Uint8Array(k), new Uint8Array());
  assert.deepEqual(
    m.range().entries.map(([k]) => hex(k)),
    ["", "00", "0000", "7f", "80", "ff"],
  );
  assert.equal(hex(m.get(new Uint8Array())!), "");
});

test("getVersionOfPreviousWrite reports the seqno that last wrote a key in the snapshot", () => {
  const store = new Store();
  put(store, "m", { a: "1" });
  put(store, "m", { b: "1" });
  put(store, "m", { a: "2" });
  const tx = store.begin();
  const m = tx.map("m");
  assert.equal(m.getVersionOfPreviousWrite(b("a")), 3);
  assert.equal(m.getVersionOfPreviousWrite(b("b")), 2);
  assert.equal(m.getVersionOfPreviousWrite(b("c")), undefined);
  m.set(b("a"), b("3"));
  assert.equal(m.getVersionOfPreviousWrite(b("a")), 3, "own writes are not in the snapshot");
});

test("range honours start (inclusive), end (exclusive), limit and next", () => {
  const store = new Store();
  put(store, "m", Object.fromEntries("abcdefgh".split("").map((c) => [c, c.toUpperCase()])));
  const m = store.begin().map("m");
  const keys = (r: { entries: Array<[Uint8Array, Uint8Array]> }) => r.entries.map(([k]) => str(k)).join("");
  assert.equal(keys(m.range({ start: b("c"), end: b("f") })), "cde");
  assert.equal(m.range({ start: b("c"), end: b("f") }).next, undefined);
  const page1 = m.range({ start: b("b"), end: b("g"), limit: 2 });
  assert.equal(keys(page1), "bc");
  assert.ok(page1.next);
  const page2 = m.range({ start: b("b"), end: b("g"), limit: 2, after: page1.next });
  assert.equal(keys(page2), "de");
  const page3 = m.range({ start: b("b"), end: b("g"), limit: 2, after: page2.next });
  assert.equal(keys(page3), "f");
  assert.equal(page3.next, undefined, "no next when the range is exhausted");
  // Exactly `limit` entries left: no next either.
  assert.equal(m.range({ start: b("g"), limit: 2 }).next, undefined);
  assert.equal(keys(m.range({ start: b("c"), end: b("c") })), "");
  assert.equal(m.range({ limit: 10000 }).entries.length, 8);
  assert.equal(m.range().entries.length, 8);
  // Default limit is 100.
  const big = new Store();
  const tx = big.begin();
  for (let i = 0; i < 150; i++) tx.map("n").set(b(String(i).padStart(3, "0")), b("v"));
  const first = tx.map("n").range();
  assert.equal(first.entries.length, 100);
  assert.equal(tx.map("n").range({ after: first.next }).entries.length, 50);
});

test("range and token errors are KvErrors", () => {
  const m = new Store().begin().map("m");
  for (const limit of [0, -1, 1.5, 10001, Number.NaN]) {
    assert.throws(() => m.range({ limit }), KvError, String(limit));
  }
  for (const after of ["", "garbage", "k1.!!", "k1.YQ=", "k1.YR", "k2.YQ"]) {
    assert.throws(() => m.range({ after }), KvError, after);
  }
  assert.throws(() => m.range({ start: b("b"), end: b("a") }), /start is after end/);
});

test("key and value limits are enforced with clear errors", () => {
  const m = new Store().begin().map("m");
  m.set(new Uint8Array(MAX_KEY_BYTES), new Uint8Array(1));
  assert.throws(() => m.set(new Uint8Array(MAX_KEY_BYTES + 1), b("v")), /key is 65537 bytes/);
  assert.throws(() => m.get(new Uint8Array(MAX_KEY_BYTES + 1)), KvError);
  assert.throws(() => m.set(b("k"), new Uint8Array(MAX_VALUE_BYTES + 1)), /value is 16777217 bytes/);
  assert.throws(() => m.set("k" as unknown as Uint8Array, b("v")), /key must be a Uint8Array/);
  assert.throws(() => m.set(b("k"), null as unknown as Uint8Array), /value must be a Uint8Array/);
});

test("a closed transaction refuses further use", () => {
  const store = new Store();
  const tx = store.begin();
  const m = tx.map("m");
  m.set(b("k"), b("v"));
  store.commit(tx);
  assert.throws(() => m.get(b("k")), /transaction is closed/);
  assert.throws(() => tx.map("m"), /transaction is closed/);
  assert.throws(() => store.commit(tx), /transaction is closed/);
  const other = store.begin();
  other.abandon();
  other.abandon();
  assert.throws(() => other.map("m").size(), /transaction is closed/);
  assert.throws(() => new Store().commit(store.begin()), /not begun on this store/);
});

// Model-based: random writes and deletes, then random range queries paged through to the end.
const keyArb = fc.uint8Array({ maxLength: 3 }).map((k) => k.map((x) => x % 4));
const opArb = fc.oneof(
  fc.record({ kind: fc.constant("set" as const), key: keyArb, value: fc.uint8Array({ maxLength: 2 }) }),
  fc.record({ kind: fc.constant("delete" as const), key: keyArb }),
  fc.record({ kind: fc.constant("commit" as const) }),
);
const queryArb = fc.record({
  start: fc.option(keyArb, { nil: undefined }),
  end: fc.option(keyArb, { nil: undefined }),
  limit: fc.integer({ min: 1, max: 6 }),
});

test("property: ranges and pagination reassemble exactly the model's sorted range", () => {
  fc.assert(
    fc.property(
      fc.array(opArb, { maxLength: 80, size: "max" }),
      fc.array(queryArb, { maxLength: 5 }),
      (ops, queries) => {
        const store = new Store();
        const model = new Map<string, Uint8Array>();
        let tx = store.begin();
        for (const op of ops) {
          const m = tx.map("m");
          if (op.kind === "set") {
            m.set(op.key, op.value);
            model.set(hex(op.key), op.value);
          } else if (op.kind === "delete") {
            assert.equal(m.delete(op.key), model.delete(hex(op.key)));
          } else {
            assert.equal(store.commit(tx).ok, true);
            tx = store.begin();
          }
        }
        const m = tx.map("m");
        const sorted = [...model].map(([k, v]) => [Buffer.from(k, "hex"), v] as const);
        sorted.sort((x, y) => compareBytes(x[0], y[0]));
        assert.equal(m.size(), sorted.length);
        for (const q of queries) {
          if (q.start && q.end && compareBytes(q.start, q.end) > 0) continue;
          const expected = sorted
            .filter(
              ([k]) => (!q.start || compareBytes(k, q.start) >= 0) && (!q.end || compareBytes(k, q.end) < 0),
            )
            .map(([k, v]) => [hex(k), hex(v)]);
          const got: string[][] = [];
          let after: string | undefined;
          for (let pages = 0; pages < 100; pages++) {
            const page = m.range({ ...q, ...(after === undefined ? {} : { after }) });
            assert.ok(page.entries.length <= q.limit);
            for (const [k, v] of page.entries) got.push([hex(k), hex(v)]);
            if (page.next === undefined) break;
            assert.equal(page.entries.length, q.limit, "a page with a next token is full");
            after = page.next;
          }
          assert.deepEqual(got, expected);
        }
      },
    ),
  );
});

// A transaction's reads see its own writes whether or not a range or size came first (point reads
// look at the writes; ranges use a merged tree built on first use and kept up to date after).
const txOpArb = fc.oneof(
  fc.record({ kind: fc.constant("set" as const), key: keyArb, value: fc.uint8Array({ maxLength: 2 }) }),
  fc.record({ kind: fc.constant("delete" as const), key: keyArb }),
  fc.record({ kind: fc.constant("get" as const), key: keyArb }),
  fc.record({ kind: fc.constant("range" as const) }),
  fc.record({ kind: fc.constant("writeSet" as const) }),
);

test("property: interleaved writes, point reads, ranges, sizes and write sets in one transaction agree with a model", () => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ key: keyArb, value: fc.uint8Array({ maxLength: 2 }) }), { maxLength: 10 }),
      fc.array(txOpArb, { maxLength: 60, size: "max" }),
      (initial, ops) => {
        const store = new Store();
        const committed = new Map<string, Uint8Array>();
        if (initial.length > 0) {
          const setup = store.begin();
          for (const { key, value } of initial) {
            setup.map("m").set(key, value);
            committed.set(hex(key), value);
          }
          assert.equal(store.commit(setup).ok, true);
        }
        const model = new Map(committed);
        const tx = store.begin();
        const m = tx.map("m");
        for (const op of ops) {
          if (op.kind === "set") {
            m.set(op.key, op.value);
            model.set(hex(op.key), op.value);
          } else if (op.kind === "delete") {
            assert.equal(m.delete(op.key), model.delete(hex(op.key)));
          } else if (op.kind === "get") {
            const want = model.get(hex(op.key));
            assert.equal(m.has(op.key), want !== undefined);
            assert.deepEqual(m.get(op.key) && hex(m.get(op.key)!), want && hex(want));
          } else if (op.kind === "range") {
            const sorted = [...model.keys()].sort((x, y) =>
              compareBytes(Buffer.from(x, "hex"), Buffer.from(y, "hex")),
            );
            assert.deepEqual(
              m.range({ limit: 10_000 }).entries.map(([k]) => hex(k)),
              sorted,
            );
            assert.equal(m.size(), model.size);
          } else {
            // The write set names every key whose final state differs from or was written over the
            // snapshot's: here, compare what it would leave against the model.
            const after = new Map(committed);
            for (const map of tx.writeSet()) {
              for (const { key, value } of map.updates) {
                if (value === null) after.delete(hex(key));
                else after.set(hex(key), value);
              }
            }
            assert.deepEqual(
              [...after].map(([k, v]) => [k, hex(v)]).sort(),
              [...model].map(([k, v]) => [k, hex(v)]).sort(),
            );
          }
        }
        const result = store.commit(tx);
        assert.equal(result.ok, true);
        const final = store.begin();
        assert.deepEqual(
          final
            .map("m")
            .range({ limit: 10_000 })
            .entries.map(([k, v]) => [hex(k), hex(v)])
            .sort(),
          [...model].map(([k, v]) => [k, hex(v)]).sort(),
        );
        final.abandon();
      },
    ),
  );
});

test("a write after the write set was read shows in the next write set and in the commit", () => {
  const store = new Store();
  const tx = store.begin();
  tx.map("m").set(b("a"), b("1"));
  assert.deepEqual(
    tx.writeSet().map((w) => [w.name, w.updates.map((u) => str(u.key))]),
    [["m", ["a"]]],
  );
  tx.map("m").set(b("b"), b("2"));
  tx.map("n").set(b("c"), b("3"));
  const expected = [
    ["m", ["a", "b"]],
    ["n", ["c"]],
  ];
  assert.deepEqual(
    tx.writeSet().map((w) => [w.name, w.updates.map((u) => str(u.key))]),
    expected,
  );
  const result = store.commit(tx);
  assert.ok(result.ok && result.seqno !== null);
  assert.deepEqual(
    result.writeSet.map((w) => [w.name, w.updates.map((u) => str(u.key))]),
    expected,
  );
  assert.equal(str(store.read("n", b("c"))), "3");
});
