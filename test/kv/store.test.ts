import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { KvError, Store, type StoreSnapshot, type WriteSet } from "../../src/kv/index.ts";
import { b, put, replay, str } from "./util.ts";

// Random histories: each step is one transaction's writes over a few maps and keys.
const stepArb = fc.array(
  fc.record({
    map: fc.constantFrom("public:a", "b", "c\u00e9"),
    key: fc.uint8Array({ maxLength: 2 }).map((k) => k.map((x) => x % 5)),
    value: fc.option(fc.uint8Array({ maxLength: 3 }), { nil: null }),
  }),
  { minLength: 1, maxLength: 6 },
);

/** Runs the steps as transactions; returns the write sets committed (by seqno) and the snapshots. */
function run(store: Store, steps: Array<Array<{ map: string; key: Uint8Array; value: Uint8Array | null }>>) {
  const writeSets: WriteSet[] = [];
  const snapshots: StoreSnapshot[] = [store.snapshot()];
  for (const step of steps) {
    const tx = store.begin();
    for (const w of step) {
      if (w.value === null) tx.map(w.map).delete(w.key);
      else tx.map(w.map).set(w.key, w.value);
    }
    const r = store.commit(tx);
    assert.equal(r.ok, true);
    if (r.ok && r.seqno !== null) {
      assert.equal(r.seqno, writeSets.length + 1);
      writeSets.push(r.writeSet);
      snapshots.push(store.snapshot());
    }
  }
  return { writeSets, snapshots };
}

test("property: applying the committed write sets to a fresh store gives the same state", () => {
  fc.assert(
    fc.property(fc.array(stepArb, { maxLength: 40, size: "max" }), (steps) => {
      const store = new Store();
      const { writeSets } = run(store, steps);
      const copy = replay(writeSets);
      assert.equal(copy.version, store.version);
      assert.deepEqual(copy.snapshot(), store.snapshot());
      assert.deepEqual(copy.mapNames(), store.mapNames());
    }),
  );
});

test("property: rollback to every earlier version restores exactly the state then", () => {
  fc.assert(
    fc.property(
      fc.array(stepArb, { minLength: 1, maxLength: 25, size: "max" }),
      fc.array(fc.nat(), { maxLength: 6 }),
      (steps, picks) => {
        const store = new Store();
        const { snapshots } = run(store, steps);
        // Walk down through random earlier versions, then all the way to 0.
        let top = store.version;
        for (const p of [...picks, 0]) {
          const to = top === 0 ? 0 : p % (top + 1);
          store.rollback(to);
          assert.equal(store.version, to);
          assert.deepEqual(store.snapshot(), snapshots[to]);
          // A transaction begun now reads the rolled-back state.
          const tx = store.begin();
          for (const m of snapshots[to]!.maps) {
            assert.deepEqual(
              tx.map(m.name).range({ limit: 10000 }).entries,
              m.entries.map(([k, v]) => [k, v]),
            );
          }
          tx.abandon();
          top = to;
        }
      },
    ),
  );
});

test("rollback then new commits reuse the seqnos and replay matches", () => {
  const store = new Store();
  put(store, "m", { a: "1" });
  put(store, "m", { b: "2" });
  put(store, "m", { c: "3" });
  store.rollback(1);
  assert.equal(store.read("m", b("b")), undefined);
  assert.equal(put(store, "m", { d: "4" }), 2);
  const ws1 = store.snapshot();
  const other = new Store();
  other.apply(1, [{ name: "m", updates: [{ key: b("a"), value: b("1") }] }]);
  other.apply(2, [{ name: "m", updates: [{ key: b("d"), value: b("4") }] }]);
  assert.deepEqual(other.snapshot(), ws1);
  store.rollback(0);
  assert.deepEqual(store.mapNames(), [], "a map created after the rollback point is gone");
});

test("compact forbids rolling back below it; rollback and compact check their argument", () => {
  const store = new Store();
  for (let i = 1; i <= 5; i++) put(store, "m", { [`k${i}`]: "v" });
  store.compact(3);
  assert.equal(store.compactedVersion, 3);
  store.compact(2); // lower than before: nothing to do
  assert.equal(store.compactedVersion, 3);
  assert.throws(() => store.rollback(2), /below the compacted version 3/);
  assert.throws(() => store.rollback(6), /after the current version 5/);
  assert.throws(() => store.compact(6), /after the current version 5/);
  for (const bad of [-1, 1.5, Number.NaN]) {
    assert.throws(() => store.rollback(bad), KvError);
    assert.throws(() => store.compact(bad), KvError);
  }
  store.rollback(3);
  assert.deepEqual(
    store.snapshot().maps[0]!.entries.map(([k]) => str(k)),
    ["k1", "k2", "k3"],
  );
  store.rollback(3); // to the current version: no change
  assert.equal(store.version, 3);
});

test("snapshot records each entry's last-write seqno, omits empty maps, and round-trips", () => {
  const store = new Store();
  put(store, "public:m", { a: "1", b: "1" });
  put(store, "public:m", { a: "2" });
  put(store, "gone", { x: "1" });
  put(store, "gone", { x: null });
  const snap = store.snapshot();
  assert.deepEqual(snap, {
    version: 4,
    maps: [
      {
        name: "public:m",
        entries: [
          [b("a"), b("2"), 2],
          [b("b"), b("1"), 1],
        ],
      },
    ],
  });
  // An emptied map still exists at this version; a snapshot leaves it out.
  assert.deepEqual(store.mapNames(), ["gone", "public:m"]);
  const restored = Store.fromSnapshot(snap);
  assert.equal(restored.version, 4);
  assert.equal(restored.compactedVersion, 4);
  assert.deepEqual(restored.snapshot(), snap);
  assert.equal(restored.begin().map("public:m").getVersionOfPreviousWrite(b("a")), 2);
  assert.throws(() => restored.rollback(3), /below the compacted version/);
  // Both continue identically.
  const ws: WriteSet = [{ name: "public:m", updates: [{ key: b("c"), value: b("3") }] }];
  store.apply(5, ws);
  restored.apply(5, ws);
  assert.deepEqual(restored.snapshot(), store.snapshot());
});

test("property: fromSnapshot(snapshot()) is the identity on snapshots", () => {
  fc.assert(
    fc.property(fc.array(stepArb, { maxLength: 20 }), (steps) => {
      const store = new Store();
      run(store, steps);
      const snap = store.snapshot();
      assert.deepEqual(Store.fromSnapshot(snap).snapshot(), snap);
    }),
  );
});

test("apply refuses the wrong seqno and malformed write sets, changing nothing", () => {
  const store = new Store();
  put(store, "m", { a: "1" });
  const before = store.snapshot();
  const up = (key: string, value: string | null = "v") => ({
    key: b(key),
    value: value === null ? null : b(value),
  });
  const cases: Array<[unknown, RegExp]> = [
    [{}, /must be an array/],
    [[null], /map #0: must be an object/],
    [[{ name: "", updates: [up("a")] }], /map #0: map name must not be empty/],
    [[{ name: "m", updates: [] }], /updates must be a non-empty array/],
    [
      [
        { name: "z", updates: [up("a")] },
        { name: "a", updates: [up("a")] },
      ],
      /map #1 \("a"\): map names must be unique and sorted/,
    ],
    [
      [
        { name: "m", updates: [up("a")] },
        { name: "m", updates: [up("b")] },
      ],
      /unique and sorted/,
    ],
    [
      [{ name: "m", updates: [up("b"), up("a")] }],
      /update #1: keys must be unique and in ascending byte order/,
    ],
    [[{ name: "m", updates: [up("a"), up("a")] }], /update #1: keys must be unique/],
    [[{ name: "m", updates: [{ key: "a", value: b("v") }] }], /update #0: key must be a Uint8Array/],
    [[{ name: "m", updates: [{ key: b("a") }] }], /update #0: value must be a Uint8Array/],
    [[{ name: "m", updates: [null] }], /update #0: must be an object/],
  ];
  for (const [ws, message] of cases) {
    assert.throws(
      () => store.apply(2, ws as WriteSet),
      (e: unknown) => e instanceof KvError && message.test(e.message),
    );
  }
  assert.throws(() => store.apply(3, []), /seqno must be 2/);
  assert.throws(() => store.apply(1, []), /seqno must be 2/);
  assert.deepEqual(store.snapshot(), before);
  assert.equal(store.version, 1);
  store.apply(2, []); // a version that wrote nothing is fine
  assert.equal(store.version, 2);
  // Removing a key of a map that does not exist is a no-op and creates no map.
  store.apply(3, [{ name: "ghost", updates: [up("a", null)] }]);
  assert.deepEqual(store.mapNames(), ["m"]);
});

test("fromSnapshot refuses malformed snapshots with a clear error", () => {
  const entry = (k: string, version = 1): [Uint8Array, Uint8Array, number] => [b(k), b("v"), version];
  const cases: Array<[unknown, RegExp]> = [
    [null, /snapshot must be an object/],
    [{ version: -1, maps: [] }, /version must be a non-negative integer/],
    [{ version: 1.5, maps: [] }, /version must be a non-negative integer/],
    [{ version: 1 }, /maps must be an array/],
    [{ version: 1, maps: [{ name: "m", entries: [] }] }, /entries must be a non-empty array/],
    [
      {
        version: 1,
        maps: [
          { name: "b", entries: [entry("a")] },
          { name: "a", entries: [entry("a")] },
        ],
      },
      /map #1 \("a"\): map names must be unique and sorted/,
    ],
    [
      { version: 1, maps: [{ name: "m", entries: [entry("b"), entry("a")] }] },
      /entry #1: keys must be unique/,
    ],
    [
      { version: 1, maps: [{ name: "m", entries: [entry("a", 2)] }] },
      /entry #0: version must be an integer from 1/,
    ],
    [{ version: 1, maps: [{ name: "m", entries: [entry("a", 0)] }] }, /version must be an integer from 1/],
    [
      { version: 1, maps: [{ name: "m", entries: [[b("a"), b("v")]] }] },
      /must be a \[key, value, version\] triple/,
    ],
    [{ version: 1, maps: [{ name: "m\n", entries: [entry("a")] }] }, /control character/],
  ];
  for (const [snap, message] of cases) {
    assert.throws(
      () => Store.fromSnapshot(snap as StoreSnapshot),
      (e: unknown) => e instanceof KvError && message.test(e.message),
      String(message),
    );
  }
  assert.equal(Store.fromSnapshot({ version: 0, maps: [] }).version, 0);
});

test("read sees the latest committed value and validates its arguments", () => {
  const store = new Store();
  assert.equal(store.read("m", b("a")), undefined);
  put(store, "m", { a: "1" });
  assert.equal(str(store.read("m", b("a"))), "1");
  assert.throws(() => store.read("", b("a")), /must not be empty/);
  assert.throws(() => store.read("m", new Uint8Array(65537)), /key is 65537 bytes/);
});
